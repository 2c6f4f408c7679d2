package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const stdinServices = `
services:
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
  svc:
    image: busybox
    command: ["sh"]
  quiet:
    image: busybox
    logging:
      driver: none
`

func TestRunWithoutATTYForwardsPipedStdinAndItsEnd(t *testing.T) {
	p := newProjectEnv(t, stdinServices)

	// cat ends only when the end of the input reaches it.
	r := p.runIn(p.dir, []byte("hello\n"), "run", "--rm", "-T", "svc", "cat")
	if r.code != 0 || r.stdout != "hello\n" {
		t.Errorf("echo hello | stack run --rm -T svc cat: exit %d, stdout %q, want 0 and \"hello\\n\"\n%s", r.code, r.stdout, r.stderr)
	}
	r = p.runIn(p.dir, []byte("a\nb\n"), "run", "--rm", "-T", "svc", "wc", "-l")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "2" {
		t.Errorf("printf 'a\\nb\\n' | stack run --rm -T svc wc -l: exit %d, stdout %q, want 0 and 2\n%s", r.code, r.stdout, r.stderr)
	}
	// Without -T, stdin not being a terminal means no TTY either.
	r = p.runIn(p.dir, []byte("x"), "run", "--rm", "svc", "sh", "-c", "wc -c; tty || true")
	if r.code != 0 || !strings.Contains(r.stdout, "1\n") || !strings.Contains(r.stdout, "not a tty") {
		t.Errorf("piped run without -T: exit %d, stdout %q, want 1 byte read and no tty\n%s", r.code, r.stdout, r.stderr)
	}
	if left := oneOffs(p.observe()); len(left) != 0 {
		t.Errorf("--rm left one-off containers: %+v", left)
	}
}

func TestRunWithPipedStdinKeepsStreamsApartAndPropagatesTheExitCode(t *testing.T) {
	p := newProjectEnv(t, stdinServices)

	r := p.runIn(p.dir, []byte("in\n"), "run", "--rm", "-T", "svc", "sh", "-c", "read l; echo got-$l; echo oops >&2; exit 7")
	if r.code != 7 || r.stdout != "got-in\n" || r.stderr != "oops\n" {
		t.Errorf("run reading stdin then exit 7: exit %d, stdout %q, stderr %q; want 7, \"got-in\\n\", \"oops\\n\"", r.code, r.stdout, r.stderr)
	}
	// Megabytes in and out, nothing lost or reordered.
	in := bytes.Repeat([]byte("0123456789abcdef\n"), 200_000)
	r = p.runIn(p.dir, in, "run", "--rm", "-T", "svc", "sh", "-c", "wc -c; seq 1 100000 | tail -n 3")
	if want := fmt.Sprintf("%d\n99998\n99999\n100000\n", len(in)); r.code != 0 || r.stdout != want {
		t.Errorf("3.4 MB through run: exit %d, stdout %q, want %q\n%s", r.code, r.stdout, want, r.stderr)
	}
	r = p.runIn(p.dir, nil, "run", "--rm", "-T", "svc", "sh", "-c", "seq 1 50000")
	if lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); r.code != 0 || len(lines) != 50000 || lines[49999] != "50000" {
		t.Errorf("seq 1 50000 through run: exit %d, %d lines, want 50000 in order", r.code, len(lines))
	}
}

func TestRunAttachedOutputIsInTheContainerLog(t *testing.T) {
	p := newProjectEnv(t, stdinServices)

	out := p.mustRun("run", "-T", "--name", "kept", "svc", "sh", "-c", "echo to-out; echo to-err >&2; printf unterminated")
	if out != "to-out\nunterminated" {
		t.Errorf("run printed %q", out)
	}
	ones := oneOffs(p.observe())
	if len(ones) != 1 {
		t.Fatalf("want the one-off container kept without --rm, got %+v", ones)
	}
	lines := readLogFile(t, filepath.Join(p.stateDir, "containers", ones[0].ID, ones[0].ID+"-json.log"))
	want := map[string]string{"to-out\n": "stdout", "to-err\n": "stderr", "unterminated": "stdout"}
	for _, l := range lines {
		if stream, ok := want[l.Log]; ok && stream == l.Stream && l.Time != "" {
			delete(want, l.Log)
		}
	}
	if len(want) != 0 {
		t.Errorf("the json log of the attached run lacks %v; it has %+v", want, lines)
	}

	// logging.driver none: no log file, and the output still reaches the CLI.
	out = p.mustRun("run", "-T", "--name", "nolog", "quiet", "echo", "quiet-out")
	if out != "quiet-out\n" {
		t.Errorf("run of a service without logs printed %q", out)
	}
	for _, c := range oneOffs(p.observe()) {
		if c.Name != "nolog" {
			continue
		}
		if _, err := os.Stat(filepath.Join(p.stateDir, "containers", c.ID, c.ID+"-json.log")); !os.IsNotExist(err) {
			t.Errorf("logging driver none: want no json log, stat says %v", err)
		}
	}
}

func TestExecWithoutATTYForwardsPipedStdin(t *testing.T) {
	p := newProjectEnv(t, stdinServices)
	p.mustRun("up", "-d", "web")

	r := p.runIn(p.dir, []byte("x\n"), "exec", "-T", "web", "cat")
	if r.code != 0 || r.stdout != "x\n" {
		t.Errorf("echo x | stack exec -T web cat: exit %d, stdout %q, want 0 and \"x\\n\"\n%s", r.code, r.stdout, r.stderr)
	}
	in := bytes.Repeat([]byte("line\n"), 300_000)
	r = p.runIn(p.dir, in, "exec", "-T", "web", "sh", "-c", "wc -l; exit 5")
	if r.code != 5 || strings.TrimSpace(r.stdout) != "300000" {
		t.Errorf("300000 lines into exec then exit 5: exit %d, stdout %q, want 5 and 300000", r.code, r.stdout)
	}
}

type logFileLine struct {
	Log, Stream, Time string
}

func readLogFile(t *testing.T, path string) []logFileLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []logFileLine
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var v logFileLine
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%s: %q is not a json-file line: %v", path, l, err)
		}
		out = append(out, v)
	}
	return out
}
