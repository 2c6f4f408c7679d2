package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stackdev/stack/engine/ctrd"
)

// waitLogs runs `stack logs ARGS` until its output contains want.
func (p *projectEnv) waitLogs(want string, args ...string) string {
	p.t.Helper()
	var out string
	err := eventually(20*time.Second, func() error {
		out = p.mustRun(append([]string{"logs"}, args...)...)
		if !strings.Contains(out, want) {
			return fmt.Errorf("stack logs %s:\n%s\nwant %q in it", strings.Join(args, " "), out, want)
		}
		return nil
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

const chattyService = `
services:
  app:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "trap 'exit 0' TERM; echo out-1; sleep 0.1; echo err-1 >&2; sleep 0.2; echo out-2; sleep 0.2; echo out-3; sleep 2; echo late; while true; do sleep 1; done"]
  later:
    image: busybox
    profiles: [later]
`

func TestLogsShowStdoutAndStderrWithComposePrefixes(t *testing.T) {
	p := newProjectEnv(t, chattyService)
	p.mustRun("up", "-d")
	// "late" is printed 2 s after up has exited: the shim's logger, not a
	// stack process, writes the file.
	out := p.waitLogs("late")
	want := []string{"app-1 | out-1", "app-1 | err-1", "app-1 | out-2", "app-1 | out-3", "app-1 | late"}
	if got := lines(out); !slices.Equal(got, want) {
		t.Fatalf("stack logs:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	if strings.Contains(out, "\033[") {
		t.Errorf("colours on a pipe: %q", out)
	}

	if got := lines(p.mustRun("logs", "--tail", "2")); !slices.Equal(got, want[3:]) {
		t.Errorf("--tail 2 = %q, want %q", got, want[3:])
	}
	if got := lines(p.mustRun("logs", "-n", "0")); len(got) != 1 || got[0] != "" {
		t.Errorf("-n 0 = %q, want nothing", got)
	}
	if got := lines(p.mustRun("logs", "--no-log-prefix", "app")); !slices.Equal(got, []string{"out-1", "err-1", "out-2", "out-3", "late"}) {
		t.Errorf("--no-log-prefix = %q", got)
	}
	if got := lines(p.mustRun("logs", "--index", "1", "-n", "1")); !slices.Equal(got, want[4:]) {
		t.Errorf("--index 1 -n 1 = %q", got)
	}

	// -t: an RFC 3339 time with nanoseconds after the prefix, in order.
	var prev time.Time
	for _, l := range lines(p.mustRun("logs", "-t")) {
		rest, ok := strings.CutPrefix(l, "app-1 | ")
		ts, text, _ := strings.Cut(rest, " ")
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if !ok || err != nil || len(ts) != len("2006-01-02T15:04:05.000000000Z") || text == "" {
			t.Fatalf("-t line %q: want 'app-1 | <RFC 3339 with ns> text' (%v)", l, err)
		}
		if tm.Before(prev) || time.Since(tm) > time.Minute {
			t.Errorf("-t time %v out of order or not recent", tm)
		}
		prev = tm
	}

	colored := p.mustRun("--ansi", "always", "logs", "-n", "1")
	if !strings.HasPrefix(colored, "\033[36mapp-1 |\033[0m late") {
		t.Errorf("--ansi always: %q, want a coloured prefix", colored)
	}
	if plain := p.mustRun("--ansi", "always", "logs", "--no-color", "-n", "1"); plain != "app-1 | late\n" {
		t.Errorf("--no-color: %q", plain)
	}
}

func TestLogsSinceUntilAndBadInput(t *testing.T) {
	p := newProjectEnv(t, chattyService)
	p.mustRun("up", "-d")
	p.waitLogs("out-3")
	if out := p.mustRun("logs", "--since", "1h"); !strings.Contains(out, "out-1") {
		t.Errorf("--since 1h = %q, want every line", out)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if out := p.mustRun("logs", "--since", future); out != "" {
		t.Errorf("--since %s = %q, want nothing", future, out)
	}
	if out := p.mustRun("logs", "--until", "1h"); out != "" {
		t.Errorf("--until 1h (an hour ago) = %q, want nothing", out)
	}
	r := p.run("logs", "--since", "yesterday")
	if r.code == 0 || !strings.Contains(r.stderr, `--since: "yesterday" is not a time`) || r.stdout != "" {
		t.Errorf("--since yesterday: exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	r = p.run("logs", "nosuch")
	if r.code == 0 || !strings.Contains(r.stderr, "no such service: nosuch") {
		t.Errorf("logs nosuch: exit %d, stderr %q", r.code, r.stderr)
	}
	// A declared service without containers has no logs, and that is fine.
	if r := p.run("logs", "later"); r.code != 0 || r.stdout != "" {
		t.Errorf("logs of a declared service without containers: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	// Without the compose file, by project name from the labels.
	elsewhere := t.TempDir()
	r = p.runIn(elsewhere, nil, "-p", p.project, "logs", "--no-log-prefix", "-n", "1", "app")
	if r.code != 0 || r.stdout != "out-3\n" && r.stdout != "late\n" {
		t.Errorf("-p logs without a compose file: exit %d, %q %s", r.code, r.stdout, r.stderr)
	}
}

const threeTickingServices = `
x-ticks: &ticks
  image: busybox
  network_mode: none
services:
  a:
    <<: *ticks
    command: ["sh", "-c", "for i in 1 2 3 4; do echo a$$i; sleep 0.5; done; exec sleep 3600"]
  b:
    <<: *ticks
    command: ["sh", "-c", "sleep 0.15; for i in 1 2 3 4; do echo b$$i; sleep 0.5; done; exec sleep 3600"]
  c:
    <<: *ticks
    command: ["sh", "-c", "sleep 0.3; for i in 1 2 3 4; do echo c$$i; sleep 0.5; done; exec sleep 3600"]
`

func TestLogsMergeThreeServicesInTimeOrder(t *testing.T) {
	p := newProjectEnv(t, threeTickingServices)
	p.mustRun("up", "-d")
	for _, s := range []string{"a4", "b4", "c4"} {
		p.waitLogs(s)
	}
	out := p.mustRun("logs", "-t")
	var prev time.Time
	var services []string
	for _, l := range lines(out) {
		f := strings.Fields(l) // a-1 | <time> a1
		if len(f) != 4 {
			t.Fatalf("line %q", l)
		}
		tm, err := time.Parse(time.RFC3339Nano, f[2])
		if err != nil || tm.Before(prev) {
			t.Fatalf("logs -t not in time order at %q (%v):\n%s", l, err, out)
		}
		prev = tm
		services = append(services, f[0])
	}
	if len(services) != 12 {
		t.Fatalf("%d lines, want 12:\n%s", len(services), out)
	}
	// Merged, not container after container: the services alternate.
	if services[0] == services[1] && services[1] == services[2] && services[2] == services[3] {
		t.Errorf("lines grouped by container, not by time:\n%s", out)
	}
	// Prefixes are padded to the widest name (all equal here) and compose's.
	for _, s := range []string{"a-1 | a1", "b-1 | b2", "c-1 | c4"} {
		if !strings.Contains(p.mustRun("logs"), s) {
			t.Errorf("no line %q", s)
		}
	}
	if out := p.mustRun("logs", "b", "--no-log-prefix"); out != "b1\nb2\nb3\nb4\n" {
		t.Errorf("logs b = %q", out)
	}
}

// follower is `stack logs -f` running in the background.
type follower struct {
	cmd  *exec.Cmd
	out  *keyBuf
	done chan error
}

func (p *projectEnv) follow(args ...string) *follower {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	p.t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, env.stackBin, append([]string{"logs", "-f"}, args...)...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "STACK_CONTAINERD_ADDRESS="+env.socket, "STACK_NAMESPACE="+p.namespace, "STACK_STATE_DIR="+p.stateDir)
	f := &follower{cmd: cmd, out: &keyBuf{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = f.out, f.out
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() { f.done <- cmd.Wait() }()
	p.t.Cleanup(func() { cmd.Process.Kill() })
	return f
}

// waitCount waits until the follower has printed n lines containing s.
func (f *follower) waitCount(t *testing.T, s string, n int) {
	t.Helper()
	err := eventually(30*time.Second, func() error {
		if got := strings.Count(f.out.String(), s); got < n {
			return fmt.Errorf("logs -f printed %d lines with %q, want %d:\n%s", got, s, n, f.out.String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

const bootingService = `
services:
  app:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "trap 'exit 0' TERM; echo boot; while true; do sleep 0.2; done"]
`

func TestLogsFollowContinuesAcrossRestartAndRecreate(t *testing.T) {
	p := newProjectEnv(t, bootingService)
	p.mustRun("up", "-d")
	f := p.follow()
	f.waitCount(t, "app-1 | boot", 1)

	// A restart (what the daemon's restart policy and `restart` do): the
	// same container, a new task, the same file appended to.
	c, err := ctrd.New(context.Background(), ctrd.Options{Address: env.socket, Namespace: p.namespace, StateDir: p.stateDir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := p.containerNamed(p.name("app", 1)).ID
	if err := c.StopContainer(context.Background(), id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.StartContainer(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	f.waitCount(t, "app-1 | boot", 2)
	if out := p.mustRun("logs", "--no-log-prefix"); out != "boot\nboot\n" {
		t.Errorf("after a restart, logs = %q, want both runs", out)
	}

	// A recreate: a new container the follower finds on its own.
	p.mustRun("up", "-d", "--force-recreate")
	f.waitCount(t, "app-1 | boot", 3)

	// A container that starts later (scale up).
	p.mustRun("up", "-d", "--scale", "app=2")
	f.waitCount(t, "app-2 | boot", 1)

	f.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-f.done:
		if err != nil {
			t.Errorf("logs -f after Ctrl-C: %v\n%s", err, f.out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not stop on Ctrl-C")
	}
}

const rotatingService = `
services:
  app:
    image: busybox
    network_mode: none
    logging:
      driver: json-file
      options:
        max-size: 1k
        max-file: "2"
    command: ["sh", "-c", "i=0; while [ $$i -lt 300 ]; do echo line-$$i; i=$$((i+1)); done; exec sleep 3600"]
  tty:
    image: busybox
    network_mode: none
    tty: true
    command: ["sh", "-c", "if [ -t 1 ]; then echo on-a-tty; fi; exec sleep 3600"]
  quiet:
    image: busybox
    network_mode: none
    logging:
      driver: none
    command: ["sh", "-c", "echo nobody-reads-this; exec sleep 3600"]
  lastwords:
    image: busybox
    network_mode: none
    command: ["printf", "no newline, then exit"]
`

func TestLogsRotationNoneDriverTTYAndLastWords(t *testing.T) {
	p := newProjectEnv(t, rotatingService)
	p.mustRun("up", "-d")
	p.waitLogs("line-299", "app")

	dir := filepath.Join(p.stateDir, "containers", p.containerNamed(p.name("app", 1)).ID)
	files, _ := filepath.Glob(filepath.Join(dir, "*-json.log*"))
	if len(files) != 2 {
		t.Fatalf("log files %v, want 2 (max-file)", files)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 1024 {
			t.Errorf("%s: %v bytes, want at most max-size 1k (%v)", f, fi.Size(), err)
		}
	}
	// What is kept is the newest lines, consecutive, read across both files.
	kept := lines(p.mustRun("logs", "--no-log-prefix", "app"))
	if kept[len(kept)-1] != "line-299" || len(kept) < 10 {
		t.Fatalf("kept lines %q", kept)
	}
	for i := 1; i < len(kept); i++ {
		var a, b int
		fmt.Sscanf(kept[i-1], "line-%d", &a)
		fmt.Sscanf(kept[i], "line-%d", &b)
		if b != a+1 {
			t.Fatalf("gap between %q and %q across rotated files", kept[i-1], kept[i])
		}
	}

	p.waitLogs("tty-1 | on-a-tty", "tty")
	// The shim keeps the pipes of an exited task open until it is deleted:
	// the unterminated last line still shows.
	p.waitLogs("lastwords-1 | no newline, then exit", "lastwords")

	quiet := filepath.Join(p.stateDir, "containers", p.containerNamed(p.name("quiet", 1)).ID)
	if files, _ := filepath.Glob(filepath.Join(quiet, "*.log*")); len(files) != 0 {
		t.Errorf("logging.driver none wrote %v", files)
	}
	if r := p.run("logs", "quiet"); r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, `quiet-1 uses logging driver "none"`) {
		t.Errorf("logs of a none-driver service: exit %d, stdout %q, stderr %q; want a warning only", r.code, r.stdout, r.stderr)
	}
}

func TestLogsBadLoggingConfigNamesTheService(t *testing.T) {
	p := newProjectEnv(t, `
services:
  app:
    image: busybox
    logging:
      driver: syslog
`)
	r := p.run("up", "-d")
	if r.code == 0 || !strings.Contains(r.stderr, "app") || !strings.Contains(r.stderr, `"syslog" is not supported`) {
		t.Errorf("driver syslog: exit %d, stderr %q; want an error naming the service", r.code, r.stderr)
	}
	p.writeCompose(`
services:
  app:
    image: busybox
    network_mode: none
    command: ["sleep", "3600"]
    logging:
      options:
        max-size: ten
`)
	r = p.run("up", "-d")
	if r.code == 0 || !strings.Contains(r.stderr, `service "app": logging.options.max-size: "ten": not a size`) {
		t.Errorf("max-size ten: exit %d, stderr %q; want an error naming the service and option", r.code, r.stderr)
	}
	if st := p.observe(); len(st.Containers) != 0 {
		t.Errorf("a rejected logging config created %d containers", len(st.Containers))
	}
}

const steadyRotatingService = `
services:
  app:
    image: busybox
    network_mode: none
    logging:
      options:
        max-size: 1k
        max-file: "10"
    command: ["sh", "-c", "i=0; while [ $$i -lt 200 ]; do echo line-$$i; i=$$((i+1)); sleep 0.02; done; exec sleep 3600"]
`

func TestLogsFollowReadsAcrossRotationsWithoutGaps(t *testing.T) {
	p := newProjectEnv(t, steadyRotatingService)
	p.mustRun("up", "-d")
	f := p.follow("--no-log-prefix")
	f.waitCount(t, "line-199\n", 1)
	got := lines(f.out.String())
	if len(got) < 150 {
		t.Fatalf("logs -f printed %d lines, want most of the 200", len(got))
	}
	for i := 1; i < len(got); i++ {
		var a, b int
		fmt.Sscanf(got[i-1], "line-%d", &a)
		fmt.Sscanf(got[i], "line-%d", &b)
		if b != a+1 {
			t.Fatalf("logs -f skipped from %q to %q across a rotation", got[i-1], got[i])
		}
	}
}
