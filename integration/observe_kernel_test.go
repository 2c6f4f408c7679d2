package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stackdev/stack/engine"
)

// A running container is observed without asking its task's shim when the
// kernel vouches for its process; whatever happens to the task behind
// stack's back still shows at once: a pause through containerd itself, a
// resume, and a kill of the container's process from the host.
func TestDriverObserveFollowsWhatHappensToATaskBehindStacksBack(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	c := e.run(e.spec("web", n.Name))

	ctr, err := e.raw.LoadContainer(e.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.Task(e.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Pid != int(task.Pid()) || c.Pid == 0 {
		t.Fatalf("observed PID %d, containerd's task has %d", c.Pid, task.Pid())
	}
	// What the kernel is asked about: without it, this test would only
	// show containerd's answers again.
	record, err := os.ReadFile(filepath.Join(e.stateDir, "containers", c.ID, "run.json"))
	if err != nil || !strings.Contains(string(record), fmt.Sprintf(`"pid": %d`, c.Pid)) {
		t.Fatalf("the run record does not identify the container's process %d: %s %v", c.Pid, record, err)
	}
	expect := func(when string, want engine.Status) {
		t.Helper()
		if got := e.container(c.ID).Status; got != want {
			t.Errorf("%s: Observe shows %s, want %s", when, got, want)
		}
		alone, err := e.d.ObserveContainer(e.ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if alone.Status != want {
			t.Errorf("%s: ObserveContainer shows %s, want %s", when, alone.Status, want)
		}
	}

	if err := task.Pause(e.ctx); err != nil {
		t.Fatal(err)
	}
	expect("paused through containerd", engine.StatusPaused)
	if err := task.Resume(e.ctx); err != nil {
		t.Fatal(err)
	}
	expect("resumed through containerd", engine.StatusRunning)

	if err := syscall.Kill(c.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return e.container(c.ID).Status == engine.StatusExited })
	expect("killed from the host", engine.StatusExited)
	if code := e.container(c.ID).ExitCode; code != 137 {
		t.Errorf("killed from the host: exit code %d, want 137", code)
	}
}
