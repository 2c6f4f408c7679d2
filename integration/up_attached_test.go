package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
)

// background is a stack command running in the background (an attached
// up, events), its output collected as it comes.
type background struct {
	cmd            *exec.Cmd
	stdout, stderr *keyBuf
	done           chan struct{}
	code           int
}

func (p *projectEnv) start(args ...string) *background {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	p.t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, env.stackBin, args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "STACK_CONTAINERD_ADDRESS="+env.socket, "STACK_NAMESPACE="+p.namespace, "STACK_STATE_DIR="+p.stateDir)
	b := &background{cmd: cmd, stdout: &keyBuf{}, stderr: &keyBuf{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = b.stdout, b.stderr
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		if exit, ok := err.(*exec.ExitError); ok {
			b.code = exit.ExitCode()
		}
		close(b.done)
	}()
	p.t.Cleanup(func() {
		cmd.Process.Kill()
		<-b.done
	})
	return b
}

// waitOutput waits until stdout (or stderr) holds every one of want.
func (b *background) waitOutput(t *testing.T, limit time.Duration, want ...string) {
	t.Helper()
	err := eventually(limit, func() error {
		out := b.stdout.String() + b.stderr.String()
		for _, w := range want {
			if !strings.Contains(out, w) {
				return fmt.Errorf("no %q yet in:\n%s", w, out)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// wait waits for the command to end and returns how long that took.
func (b *background) wait(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	select {
	case <-b.done:
		return time.Since(t0)
	case <-time.After(limit):
		t.Fatalf("%v still running after %v\nstdout:\n%s\nstderr:\n%s", b.cmd.Args, limit, b.stdout.String(), b.stderr.String())
	}
	return 0
}

const oneShots = `
services:
  first:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "echo first-a; sleep 1; echo first-b"]
  second:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "sleep 0.5; echo second-a >&2; sleep 1.5; echo second-b; exit 4"]
`

func TestUpAttachedFollowsTheLogsAndReturnsWhenTheOneShotsExit(t *testing.T) {
	p := newProjectEnv(t, oneShots)
	r := p.run("up")
	if r.code != 0 {
		t.Fatalf("up: exit %d, want 0 (no abort flag: exits are reported, not returned)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("up:\n%s", r.stdout)
	got := lines(r.stdout)
	want := []string{"Attaching to first-1, second-1", "first-1  | first-a", "second-1 | second-a", "first-1  | first-b",
		"first-1 exited with code 0", "second-1 | second-b", "second-1 exited with code 4"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("up printed:\n%s\nwant (merged in time order, each exit after its lines):\n%s", r.stdout, strings.Join(want, "\n"))
	}
	if !strings.Contains(r.stderr, "Started") || strings.Contains(r.stdout, "\033[") {
		t.Errorf("progress on stderr, no colours on a pipe: stdout %q stderr %q", r.stdout, r.stderr)
	}
	for svc, st := range p.statuses() {
		if st != engine.StatusExited {
			t.Errorf("%s is %s after up returned", svc, st)
		}
	}

	// Run again: only second's logs, without prefix, with timestamps; the
	// first run's lines are not shown again; the exit line is coloured.
	r = p.run("--ansi", "always", "up", "--attach", "second", "--no-log-prefix", "--timestamps")
	if r.code != 0 {
		t.Fatalf("up --attach second: exit %d\n%s", r.code, r.stderr)
	}
	got = lines(r.stdout)
	if len(got) != 4 || got[0] != "Attaching to second-1" || got[3] != "\033[36msecond-1 exited with code 4\033[0m" {
		t.Fatalf("up --attach second --no-log-prefix --timestamps:\n%q\nwant second's lines and coloured exit only (compose watches the attached services)", r.stdout)
	}
	for i, text := range []string{"second-a", "second-b"} {
		ts, rest, _ := strings.Cut(got[1+i], " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || rest != text {
			t.Errorf("line %q: want '<RFC 3339 time> %s' (%v)", got[1+i], text, err)
		}
	}
}

// abortProject: ok exits 0 at once; bad exits 5 after 2 s, or 7 when asked
// to stop; server runs until stopped and then exits 0.
const abortProject = `
services:
  ok:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "echo ok done"]
  bad:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "trap 'echo bad stopped; exit 7' TERM; sleep 2 & wait $$!; exit 5"]
  server:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "trap 'echo server stopped; exit 0' TERM; while true; do sleep 0.1; done"]
`

func TestUpAttachedAbortsAndReturnsComposesExitCodes(t *testing.T) {
	p := newProjectEnv(t, abortProject)
	for _, tc := range []struct {
		flags []string
		code  int
		why   string
	}{
		// ok's exit 0 is not a failure; bad's 5 is: everything stops, 5.
		{[]string{"--abort-on-container-failure"}, 5, "bad failed with 5"},
		// ok exits first: everything stops, up returns ok's 0.
		{[]string{"--abort-on-container-exit"}, 0, "the first container to exit returned 0"},
		// The same abort, but the code is bad's, stopped by it: 7.
		{[]string{"--exit-code-from", "bad"}, 7, "bad exited with 7 when stopped"},
	} {
		t0 := time.Now()
		r := p.run(append([]string{"--ansi", "always", "up", "--no-color"}, tc.flags...)...)
		took := time.Since(t0)
		t.Logf("up %v: exit %d in %v\n%s", tc.flags, r.code, took, r.stdout)
		if r.code != tc.code {
			t.Errorf("up %v: exit %d, want %d (%s)\nstdout:\n%s\nstderr:\n%s", tc.flags, r.code, tc.code, tc.why, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, "\033[") {
			t.Errorf("up --no-color %v: colours in %q", tc.flags, r.stdout)
		}
		if !strings.Contains(r.stdout, "Aborting on container exit...") || !strings.Contains(r.stdout, "server-1 | server stopped") ||
			!strings.Contains(r.stdout, "server-1 exited with code 0") {
			t.Errorf("up %v: want the abort and server stopped gracefully:\n%s", tc.flags, r.stdout)
		}
		for svc, st := range p.statuses() {
			if st != engine.StatusExited {
				t.Errorf("up %v: %s is %s afterwards, want exited", tc.flags, svc, st)
			}
		}
		if server := p.container("server"); server.ExitCode != 0 {
			t.Errorf("up %v: server exit code %d, want 0 (stopped by its stop signal, not killed)", tc.flags, server.ExitCode)
		}
	}

	r := p.run("up", "--exit-code-from", "nope")
	if r.code == 0 || !strings.Contains(r.stderr, "no such service: nope") {
		t.Errorf("--exit-code-from nope: exit %d, stderr %q", r.code, r.stderr)
	}
	r = p.run("up", "-d", "--abort-on-container-exit")
	if r.code == 0 || !strings.Contains(r.stderr, "--detach cannot be combined with --abort-on-container-exit") {
		t.Errorf("-d --abort-on-container-exit: exit %d, stderr %q", r.code, r.stderr)
	}
}

const interruptible = `
services:
  graceful:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "trap 'echo caught TERM; exit 0' TERM; echo graceful ready; while true; do sleep 0.1; done"]
  stubborn:
    image: busybox
    network_mode: none
    stop_grace_period: 1m
    command: ["sh", "-c", "trap 'echo ignoring TERM' TERM; echo stubborn ready; while true; do sleep 0.1; done"]
`

func TestUpAttachedStopsOnCtrlCAndKillsOnASecond(t *testing.T) {
	p := newProjectEnv(t, interruptible)
	// graceful's logs and exit are not followed, but Ctrl-C stops it too.
	up := p.start("up", "--no-attach", "graceful")
	up.waitOutput(t, time.Minute, "Attaching to stubborn-1\n", "stubborn-1 | stubborn ready")
	if st := p.statuses(); st["graceful"] != engine.StatusRunning {
		t.Fatalf("graceful is %s, want running", st["graceful"])
	}

	up.cmd.Process.Signal(syscall.SIGINT)
	up.waitOutput(t, 10*time.Second, "Gracefully stopping... (press Ctrl+C again to force)", "stubborn-1 | ignoring TERM")
	err := eventually(10*time.Second, func() error {
		if c := p.container("graceful"); c.Status != engine.StatusExited || c.ExitCode != 0 {
			return fmt.Errorf("graceful is %s (%d), want exited by its trap (0)", c.Status, c.ExitCode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// stubborn ignores its stop signal and has a minute of grace: up waits.
	time.Sleep(300 * time.Millisecond)
	select {
	case <-up.done:
		t.Fatalf("up returned before stubborn stopped:\n%s", up.stdout.String())
	default:
	}
	if st := p.statuses(); st["stubborn"] != engine.StatusRunning {
		t.Fatalf("after one Ctrl-C: stubborn is %s, want still in its grace period", st["stubborn"])
	}

	up.cmd.Process.Signal(syscall.SIGINT)
	took := up.wait(t, 10*time.Second)
	t.Logf("second Ctrl-C: up returned in %v\nstdout:\n%s\nstderr:\n%s", took, up.stdout.String(), up.stderr.String())
	if up.code != 130 {
		t.Errorf("up after Ctrl-C: exit %d, want 130 as compose", up.code)
	}
	out := up.stdout.String()
	if !strings.Contains(out, "stubborn-1 exited with code 137") || strings.Contains(out, "graceful-1") {
		t.Errorf("want stubborn reported killed and nothing of graceful (--no-attach):\n%s", out)
	}
	if c := p.container("stubborn"); c.Status != engine.StatusExited || c.ExitCode != 137 {
		t.Errorf("stubborn after the second Ctrl-C: %s (%d), want exited (137)", c.Status, c.ExitCode)
	}
}

const crashTwice = `
services:
  crashy:
    image: busybox
    network_mode: none
    restart: on-failure:2
    depends_on: [dep]
    command: ["sh", "-c", "echo crash run; sleep 0.2; exit 2"]
  dep:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "echo dep ready; exec sleep 3600"]
`

// A container its restart policy brings back is still followed: up
// returns after the last run the daemon makes, not the first exit. The
// dependency's logs are shown (--attach-dependencies) but only the named
// service is waited for, as compose does.
func TestUpAttachedFollowsRestartsUntilThePolicyGivesUp(t *testing.T) {
	e := newDNSEnv(t, crashTwice) // the daemon enforces restart policies
	r := e.run("up", "crashy", "--attach-dependencies")
	t.Logf("up: exit %d\n%s", r.code, r.stdout)
	if r.code != 0 {
		t.Fatalf("up: exit %d, want 0\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, "crashy-1 | crash run"); n != 3 {
		t.Errorf("%d runs printed, want 3 (one and two restarts)", n)
	}
	if n := strings.Count(r.stdout, "crashy-1 exited with code 2"); n != 3 {
		t.Errorf("%d exits printed, want 3", n)
	}
	if !strings.Contains(r.stdout, "dep-1    | dep ready") || strings.Contains(r.stdout, "dep-1 exited") {
		t.Errorf("want dep's logs and no wait for it:\n%s", r.stdout)
	}
	if st := e.statuses(); st["dep"] != engine.StatusRunning {
		t.Errorf("dep is %s after up returned, want still running (only crashy was named)", st["dep"])
	}
	if c := e.projectEnv.container("crashy"); c.RestartCount != 2 || c.Status != engine.StatusExited {
		t.Errorf("crashy: %d restarts, %s; want 2, exited", c.RestartCount, c.Status)
	}
}

// A service with attach: false runs, but its logs are not followed unless
// --attach names it.
func TestUpAttachedLeavesOutAttachFalse(t *testing.T) {
	p := newProjectEnv(t, `
services:
  first:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "echo first-a; sleep 0.5"]
  quiet:
    image: busybox
    network_mode: none
    attach: false
    command: ["sh", "-c", "echo quiet-a"]
`)
	r := p.run("up")
	if r.code != 0 {
		t.Fatalf("up: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if got := lines(r.stdout); len(got) == 0 || got[0] != "Attaching to first-1" || strings.Contains(r.stdout, "quiet") {
		t.Errorf("up printed:\n%s\nwant first's logs only (quiet has attach: false)", r.stdout)
	}
	if st := p.statuses()["quiet"]; st != engine.StatusExited {
		t.Errorf("quiet is %s: attach: false must still run it", st)
	}
	r = p.run("up", "--attach", "quiet")
	if r.code != 0 || !strings.Contains(r.stdout, "quiet-1 | quiet-a") {
		t.Errorf("up --attach quiet: exit %d, printed:\n%s\nwant quiet's line", r.code, r.stdout)
	}
}
