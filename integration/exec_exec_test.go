package integration

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const execServices = `
services:
  app:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    environment:
      FROM_SERVICE: yes
    scale: 2
`

func TestExecPrintsOutputAndPropagatesTheExitCode(t *testing.T) {
	p := newProjectEnv(t, execServices)
	p.mustRun("up", "-d")

	out := p.mustRun("exec", "-T", "app", "sh", "-c", "echo out; echo err >&2; echo $FROM_SERVICE")
	if out != "out\nyes\n" {
		t.Errorf("exec stdout = %q, want the command's stdout with the service's environment", out)
	}
	r := p.run("exec", "-T", "app", "sh", "-c", "echo err >&2; exit 3")
	if r.code != 3 {
		t.Errorf("exec of `exit 3`: exit %d, want 3\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "err\n") {
		t.Errorf("exec stderr = %q, want the command's stderr", r.stderr)
	}
}

func TestExecEnvWorkdirUserAndIndexTakeEffect(t *testing.T) {
	p := newProjectEnv(t, execServices)
	p.mustRun("up", "-d")

	out := p.mustRun("exec", "-T", "-e", "A=1", "-e", "FROM_SERVICE=over", "-w", "/tmp", "-u", "nobody",
		"app", "sh", "-c", "echo $A $FROM_SERVICE $(pwd) $(id -un)")
	if strings.TrimSpace(out) != "1 over /tmp nobody" {
		t.Errorf("exec with -e -w -u printed %q, want \"1 over /tmp nobody\"", out)
	}
	host1 := strings.TrimSpace(p.mustRun("exec", "-T", "--index", "1", "app", "hostname"))
	host2 := strings.TrimSpace(p.mustRun("exec", "-T", "--index", "2", "app", "hostname"))
	st := p.observe()
	byName := map[string]string{}
	for _, c := range st.Containers {
		byName[c.Name] = c.Hostname
	}
	if host1 != byName[p.project+"-app-1"] || host2 != byName[p.project+"-app-2"] || host1 == host2 {
		t.Errorf("--index 1 ran in %q and --index 2 in %q, want the hostnames of app-1 and app-2: %v", host1, host2, byName)
	}
}

func TestExecForwardsPipedStdin(t *testing.T) {
	p := newProjectEnv(t, execServices)
	p.mustRun("up", "-d")

	r := p.runIn(p.dir, []byte("hi\nthere\n"), "exec", "-T", "app", "cat")
	if r.code != 0 || r.stdout != "hi\nthere\n" {
		t.Errorf("echo hi | stack exec -T app cat: exit %d, stdout %q, want the input back\n%s", r.code, r.stdout, r.stderr)
	}
	// Without -T and with stdin not a terminal there is no TTY either.
	r = p.runIn(p.dir, []byte("x"), "exec", "app", "sh", "-c", "wc -c; tty || true")
	if r.code != 0 || !strings.Contains(r.stdout, "1") || !strings.Contains(r.stdout, "not a tty") {
		t.Errorf("piped exec without -T: exit %d, stdout %q, want 1 byte read and no tty\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestExecWithATerminalGivesTheCommandATTY(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("needs script(1) from util-linux to provide a terminal")
	}
	p := newProjectEnv(t, execServices)
	p.mustRun("up", "-d")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-qec", env.stackBin+" exec app sh -c 'tty; exit 4'", "/dev/null")
	cmd.Dir = p.dir
	cmd.Env = p.cmdEnv()
	out, err := cmd.Output()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "/dev/pts/") {
		t.Errorf("exec under a terminal printed %q, want a /dev/pts/N terminal", out)
	}
	if code != 4 {
		t.Errorf("exec under a terminal: exit %d, want 4", code)
	}
}

func TestExecBadInput(t *testing.T) {
	p := newProjectEnv(t, execServices+`
  idle:
    image: busybox
    command: ["true"]
    profiles: [never]
`)
	p.mustRun("up", "-d")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "-T", "nope", "true"}, "no such service: nope"},
		{[]string{"exec", "-T", "idle", "true"}, `service "idle" is not running`},
		{[]string{"exec", "-T", "--index", "3", "app", "true"}, "--index 3"},
	} {
		r := p.run(tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("stack %s: exit %d, stderr %q, want an error containing %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
}

// cmdEnv is the environment runIn gives stack, for commands that run it
// through another program (script).
func (e *stackEnv) cmdEnv() []string {
	return append(os.Environ(),
		"STACK_CONTAINERD_ADDRESS="+env.socket,
		"STACK_NAMESPACE="+e.namespace,
		"STACK_STATE_DIR="+e.stateDir,
	)
}
