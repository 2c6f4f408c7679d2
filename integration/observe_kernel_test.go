package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
)

// A running container is observed without asking its task's shim when the
// kernel vouches for its process: with the shim stopped (SIGSTOP), which
// would leave containerd without an answer, the container still shows
// running, at once. Whatever happens to the task behind stack's back still
// shows: a pause through containerd itself, a resume, and a kill of the
// container's process from the host; a stop leaves nothing to vouch for.
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
	if p := recordedProcess(t, e, c.ID); p == nil || p.Pid != c.Pid {
		t.Fatalf("the run record does not identify the container's process %d: %+v", c.Pid, p)
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

	shim, err := strconv.Atoi(procField(t, c.Pid, 4)) // the init's parent
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(shim, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(shim, syscall.SIGCONT) })
	began := time.Now()
	expect("its shim stopped", engine.StatusRunning)
	t.Logf("observed twice with the shim stopped in %s", time.Since(began))
	if err := syscall.Kill(shim, syscall.SIGCONT); err != nil {
		t.Fatal(err)
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

	if err := e.d.StartContainer(e.ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.d.StopContainer(e.ctx, c.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	if p := recordedProcess(t, e, c.ID); p != nil {
		t.Errorf("a stopped run's record still names a process: %+v", p)
	}
	expect("stopped", engine.StatusExited)
}

// recordedProcess is the process that container id's run record names
// (what the kernel is asked about); nil when it names none.
func recordedProcess(t *testing.T, e *driverEnv, id string) *struct{ Pid int } {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.stateDir, "containers", id, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rr struct {
		Proc *struct{ Pid int } `json:"proc"`
	}
	if err := json.Unmarshal(b, &rr); err != nil {
		t.Fatal(err)
	}
	return rr.Proc
}
