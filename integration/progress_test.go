package integration

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// On a terminal, up shows one line per resource, rewritten in place as
// compose does; piped, it prints plain lines.
func TestProgressOnATerminalUpdatesLinesInPlace(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("script(1) from util-linux is needed to give stack a terminal")
	}
	p := newProjectEnv(t, threeServices)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-qec", env.stackBin+" up -d db", "/dev/null")
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "STACK_CONTAINERD_ADDRESS="+env.socket, "STACK_NAMESPACE="+p.namespace, "STACK_STATE_DIR="+p.stateDir, "TERM=xterm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("up on a terminal: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"\x1b[", "[+] Running 2/2", "✔ Container " + p.project + "-db-1", "Started", "✔ Network " + p.project + "_default"} {
		if !strings.Contains(s, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, s)
		}
	}

	r := p.run("up", "-d", "--force-recreate", "db")
	if r.code != 0 || strings.Contains(r.stderr, "\x1b[") || !strings.Contains(r.stderr, " Container "+p.project+"-db-1  Started\n") {
		t.Errorf("piped output should be plain lines without escapes:\n%q", r.stderr)
	}
}
