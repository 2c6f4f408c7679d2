package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// With nothing listening on the address and containerd installed, the first
// command that needs containerd starts one, says so in one line, and the
// next command uses it silently.
func TestContainerdIsStartedWhenNothingAnswers(t *testing.T) {
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Fatal("containerd binary not installed; make test installs it")
	}
	dir, err := os.MkdirTemp("/tmp", "sa-") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	state := filepath.Join(dir, "state")
	t.Cleanup(func() { stopDaemon(t, filepath.Join(state, "containerd", "containerd.pid")) })

	e := newStackEnv(t)
	args := []string{"--address", sock, "--state-dir", state, "image", "ls", "-q"}
	r := e.run(args...)
	if r.code != 0 {
		t.Fatalf("first command: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "containerd was not running: started one on "+sock) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("first command should say in one line that it started containerd; stderr:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(state, "containerd", "root")); err != nil {
		t.Errorf("containerd's root is not under the state directory: %v", err)
	}
	r = e.run(args...)
	if r.code != 0 || r.stderr != "" {
		t.Errorf("second command: exit %d, stderr %q; want 0 and silence", r.code, r.stderr)
	}
	if out := e.mustRun("--address", sock, "version"); !strings.Contains(out, "containerd version") {
		t.Errorf("version does not reach the started containerd:\n%s", out)
	}
}

func stopDaemon(t *testing.T, pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	t.Logf("containerd %d needed SIGKILL", pid)
}
