package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The service's shell knows where it runs ($WHERE), so that output coming
// from the container tells itself apart from the host shell around stack.
const ttyServices = `
services:
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    environment:
      WHERE: in-web
  svc:
    image: busybox
    command: ["sh"]
    environment:
      WHERE: in-svc
`

func TestExecInATmuxPaneIsARealTerminal(t *testing.T) {
	p := newProjectEnv(t, ttyServices)
	p.mustRun("up", "-d", "web")
	pane := newTmuxPane(t, p, 100, 30)

	pane.typeLine(env.stackBin + " exec web sh; echo rc=$?")
	pane.checkTerminal("in-web")

	// Ctrl-C goes to the TTY: it interrupts sleep inside the container and
	// leaves stack, and the container's shell, running.
	pane.interruptSleep()
	start := time.Now()
	pane.typeLine("echo alive-$WHERE")
	pane.waitFor(regexp.MustCompile(`(?m)^alive-in-web\s*$`), 10*time.Second)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the shell answered %v after Ctrl-C: sleep 100 was not interrupted", d)
	}
	if regexp.MustCompile(`(?m)^rc=`).MatchString(pane.screen()) {
		t.Fatalf("Ctrl-C ended stack exec instead of the sleep in the container:\n%s", pane.screen())
	}

	pane.typeLine("exit 3")
	pane.waitFor(regexp.MustCompile(`(?m)^rc=3\s*$`), 15*time.Second)
}

func TestRunInATmuxPaneIsARealTerminal(t *testing.T) {
	p := newProjectEnv(t, ttyServices)
	pane := newTmuxPane(t, p, 90, 25)

	pane.typeLine(env.stackBin + " run --rm svc sh; echo rc=$?")
	pane.checkTerminal("in-svc")

	pane.interruptSleep()
	pane.typeLine("echo alive-$WHERE")
	pane.waitFor(regexp.MustCompile(`(?m)^alive-in-svc\s*$`), 10*time.Second)

	pane.typeLine("exit 3")
	pane.waitFor(regexp.MustCompile(`(?m)^rc=3\s*$`), 20*time.Second)
	if left := oneOffs(p.observe()); len(left) != 0 {
		t.Errorf("run --rm left one-off containers: %+v", left)
	}
}

// checkTerminal waits for the container's shell, then checks that it has
// a terminal of the pane's size, that a new window size reaches it, and
// that a typed command's output comes back to the screen.
func (tp *tmuxPane) checkTerminal(where string) {
	tp.t.Helper()
	tp.typeLine("echo ready-$WHERE")
	tp.waitFor(regexp.MustCompile(`(?m)^ready-`+where+`\s*$`), 30*time.Second)

	tp.typeLine(`echo "tty=$(tty)"`)
	tp.waitFor(regexp.MustCompile(`(?m)^tty=/dev/pts/\d+\s*$`), 10*time.Second)

	tp.typeLine(`echo "size=$(stty size)"`)
	got := tp.waitFor(regexp.MustCompile(`(?m)^size=(\d+ \d+)\s*$`), 10*time.Second)
	if want := tp.size(); got[1] != want {
		tp.t.Errorf("stty size in the container = %q, want the pane's rows and columns %q", got[1], want)
	}

	tp.tmux("resize-window", "-t", tp.target, "-x", "120", "-y", "40")
	tp.typeLine(`echo "resized=$(stty size)"`)
	got = tp.waitFor(regexp.MustCompile(`(?m)^resized=(\d+ \d+)\s*$`), 10*time.Second)
	if want := tp.size(); got[1] != want || want != "40 120" {
		tp.t.Errorf("after resize-window to 120x40: stty size %q, pane %q, want both \"40 120\"", got[1], want)
	}

	tp.typeLine("echo $((6*7))-$WHERE")
	tp.waitFor(regexp.MustCompile(`(?m)^42-`+where+`\s*$`), 10*time.Second)
}

// interruptSleep starts a long sleep in the container's shell and presses
// Ctrl-C once it runs.
func (tp *tmuxPane) interruptSleep() {
	tp.t.Helper()
	tp.typeLine("echo sleeping-$WHERE; sleep 100")
	tp.waitFor(regexp.MustCompile(`(?m)^sleeping-in-`), 10*time.Second)
	time.Sleep(300 * time.Millisecond) // from echo to sleep's exec
	tp.keys("C-c")
}

// tmuxPane is a shell in a tmux session of its own, on a private server
// socket, with the test's stack environment: a real terminal to type into
// and read the screen of.
type tmuxPane struct {
	t      *testing.T
	sock   string
	target string
}

func newTmuxPane(t *testing.T, p *projectEnv, cols, rows int) *tmuxPane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("needs tmux to drive a real terminal")
	}
	// t.TempDir can be too long for a unix socket path (108 bytes).
	dir, err := os.MkdirTemp("", "stk-tmux-")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tmuxPane{t: t, sock: filepath.Join(dir, "s"), target: "it"}
	t.Cleanup(func() {
		_ = exec.Command("tmux", "-S", tp.sock, "kill-server").Run()
		_ = os.RemoveAll(dir)
	})
	shell := fmt.Sprintf("env STACK_CONTAINERD_ADDRESS=%s STACK_NAMESPACE=%s STACK_STATE_DIR=%s PS1='host$ ' sh",
		shellQuote(env.socket), shellQuote(p.namespace), shellQuote(p.stateDir))
	tp.tmux("-f", "/dev/null", "new-session", "-d", "-s", tp.target, "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows), "-c", p.dir, shell)
	tp.tmux("set-option", "-t", tp.target, "status", "off")
	tp.waitFor(regexp.MustCompile(`(?m)^host\$`), 10*time.Second)
	return tp
}

func (tp *tmuxPane) tmux(args ...string) string {
	tp.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tmux", append([]string{"-S", tp.sock}, args...)...).CombinedOutput()
	if err != nil {
		tp.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// typeLine types s as it is, then Enter.
func (tp *tmuxPane) typeLine(s string) {
	tp.t.Helper()
	tp.tmux("send-keys", "-t", tp.target, "-l", s)
	tp.keys("Enter")
}

// keys sends tmux key names (C-c, Enter).
func (tp *tmuxPane) keys(names ...string) {
	tp.t.Helper()
	tp.tmux(append([]string{"send-keys", "-t", tp.target}, names...)...)
}

// screen is what the pane shows, wrapped lines joined.
func (tp *tmuxPane) screen() string {
	tp.t.Helper()
	return tp.tmux("capture-pane", "-p", "-J", "-t", tp.target)
}

// size is the pane's "rows columns", as stty size prints it.
func (tp *tmuxPane) size() string {
	tp.t.Helper()
	return strings.TrimSpace(tp.tmux("display-message", "-p", "-t", tp.target, "#{pane_height} #{pane_width}"))
}

// waitFor polls the screen until re matches and returns the match.
func (tp *tmuxPane) waitFor(re *regexp.Regexp, timeout time.Duration) []string {
	tp.t.Helper()
	var s string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		s = tp.screen()
		if m := re.FindStringSubmatch(s); m != nil {
			return m
		}
	}
	tp.t.Fatalf("after %v the screen shows no %s:\n%s", timeout, re, s)
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
