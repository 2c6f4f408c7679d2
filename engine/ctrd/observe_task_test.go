package ctrd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
)

// A container's status comes from its task, and from its run record when
// the task is gone or not started yet: a start in progress shows the run
// before it, never a run whose task vanished.
func TestApplyTaskShowsAStartInProgressAsTheRunBeforeIt(t *testing.T) {
	started := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	ended := started.Add(time.Minute)
	exited := runRecord{StartedAt: started, FinishedAt: ended, ExitCode: 3, Exited: true}
	going := runRecord{StartedAt: started}
	for _, tc := range []struct {
		name string
		proc *task.Process
		rr   runRecord
		want engine.Status
		code int
	}{
		{"never started", nil, runRecord{}, engine.StatusCreated, 0},
		{"created task of a first start", &task.Process{Status: task.Status_CREATED}, runRecord{}, engine.StatusCreated, 0},
		{"created task after an exit", &task.Process{Status: task.Status_CREATED}, exited, engine.StatusExited, 3},
		{"no task after an exit", nil, exited, engine.StatusExited, 3},
		{"running", &task.Process{Status: task.Status_RUNNING, Pid: 42}, going, engine.StatusRunning, 0},
		{"stopped task", &task.Process{Status: task.Status_STOPPED, ExitStatus: 137}, going, engine.StatusExited, 137},
		// Only containerd losing the task leaves a run going on without
		// one: the reboot case.
		{"no task, run going on", nil, going, engine.StatusCreated, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := engine.Container{Status: engine.StatusCreated} // as decodeContainer leaves it
			applyTask(&c, tc.proc, tc.rr)
			if c.Status != tc.want || c.ExitCode != tc.code {
				t.Errorf("status %s exit %d, want %s exit %d", c.Status, c.ExitCode, tc.want, tc.code)
			}
		})
	}
}

// The run record is read before the task is asked for: a task missing, or
// not started, while the record says a run goes on, may come from a stop,
// a restart or a start that landed in between, and both are read again.
func TestTaskAndRecordDisagreeOnlyWhenTheRecordSaysARunGoesOn(t *testing.T) {
	going := runRecord{StartedAt: time.Now()}
	for _, tc := range []struct {
		name string
		proc *task.Process
		rr   runRecord
		want bool
	}{
		{"no task, run going on", nil, going, true},
		{"created task, run going on", &task.Process{Status: task.Status_CREATED}, going, true},
		{"running task", &task.Process{Status: task.Status_RUNNING}, going, false},
		{"stopped task", &task.Process{Status: task.Status_STOPPED}, going, false},
		{"no task, never started", nil, runRecord{}, false},
		{"no task, exit recorded", nil, runRecord{StartedAt: time.Now(), Exited: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := taskAndRecordDisagree(tc.proc, tc.rr); got != tc.want {
				t.Errorf("taskAndRecordDisagree = %v, want %v", got, tc.want)
			}
		})
	}
}

// fakeTasks stands for containerd's task service in tests of observe: the
// tasks it knows, the containers whose shim fails, whether containerd
// answers at all, and which containers it was asked about.
type fakeTasks struct {
	mu      sync.Mutex
	tasks   map[string]*task.Process
	failing map[string]error
	down    bool
	asked   []string
}

func (f *fakeTasks) get(ctx context.Context, id string) (*task.Process, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, id)
	if err := f.failing[id]; err != nil {
		return nil, err
	}
	return f.tasks[id], nil
}

func (f *fakeTasks) serving(context.Context) bool { return !f.down }

func (f *fakeTasks) askedSorted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(slices.Values(f.asked))
}

// observeClient is a Client on a state directory of its own, whose
// containerd is f and whose host vouches for nothing.
func observeClient(t *testing.T, f *fakeTasks) *Client {
	c := &Client{opts: Options{StateDir: t.TempDir()}.withDefaults(), host: hostProc{procRoot: t.TempDir()}}
	c.opts.Logger = slog.New(slog.DiscardHandler)
	c.getTask, c.serving = f.get, f.serving
	return c
}

// listed is container id as containerd's list returns it.
func listed(id string) containers.Container {
	return containers.Container{ID: id, Labels: map[string]string{engine.LabelName: "p-" + id + "-1", engine.LabelProject: "p"}}
}

func TestAnObservationAsksContainerdOnlyForTheTasksTheKernelDoesNotVouchFor(t *testing.T) {
	f := &fakeTasks{tasks: map[string]*task.Process{"web": {ID: "web", Status: task.Status_RUNNING, Pid: 7}}}
	c := observeClient(t, f)
	decoded := []decodedContainer{c.decodeContainer(listed("web"), ""), c.decodeContainer(listed("db"), ""), c.decodeContainer(listed("api"), "")}
	decoded[2].vouched = &task.Process{ID: "api", Status: task.Status_RUNNING, Pid: 9}

	procs, unanswered, err := c.tasksOf(context.Background(), decoded)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.askedSorted(); !slices.Equal(got, []string{"db", "web"}) {
		t.Errorf("containerd was asked about %v, want db and web (api is vouched for)", got)
	}
	if procs["api"] != decoded[2].vouched || procs["web"].GetPid() != 7 || procs["db"] != nil || len(unanswered) != 0 {
		t.Errorf("tasks %v, unanswered %v: want api as vouched, web from containerd, no task for db", procs, unanswered)
	}
}

func TestAShimThatFailsLeavesOnlyItsContainerUnknown(t *testing.T) {
	f := &fakeTasks{
		tasks:   map[string]*task.Process{"web": {ID: "web", Status: task.Status_RUNNING}},
		failing: map[string]error{"db": fmt.Errorf("state of the task: %w", errdefs.ErrUnknown)},
	}
	c := observeClient(t, f)
	procs, unanswered, err := c.tasksOf(context.Background(), []decodedContainer{c.decodeContainer(listed("web"), ""), c.decodeContainer(listed("db"), "")})
	if err != nil {
		t.Fatalf("one failing shim failed the whole observation: %v", err)
	}
	if !unanswered["db"] || unanswered["web"] || procs["web"] == nil {
		t.Errorf("unanswered %v, tasks %v: want db alone unknown", unanswered, procs)
	}
	// containerd reports a shim that does not answer as unavailable too.
	f.failing["db"] = fmt.Errorf("shim: %w", errdefs.ErrUnavailable)
	if _, unanswered, err = c.tasksOf(context.Background(), []decodedContainer{c.decodeContainer(listed("db"), "")}); err != nil || !unanswered["db"] {
		t.Errorf("an unavailable shim while containerd answers: unanswered %v, err %v; want db unknown, no error", unanswered, err)
	}
}

func TestContainerdGoneOrAnEndedContextFailsTheObservation(t *testing.T) {
	f := &fakeTasks{failing: map[string]error{"db": fmt.Errorf("connection refused: %w", errdefs.ErrUnavailable)}, down: true}
	c := observeClient(t, f)
	if _, _, err := c.tasksOf(context.Background(), []decodedContainer{c.decodeContainer(listed("db"), "")}); !errdefs.IsUnavailable(err) {
		t.Errorf("containerd unreachable: err %v, want it unavailable", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.failing["db"], f.down = context.Canceled, false
	if _, _, err := c.tasksOf(ctx, []decodedContainer{c.decodeContainer(listed("db"), "")}); !errors.Is(err, context.Canceled) {
		t.Errorf("context ended: err %v, want it canceled", err)
	}
}

// A stop that lands between the run record's read and the task's: the
// record read first says the run goes on, the task is already deleted.
// The container shows the exit the stop recorded, not a task that
// vanished.
func TestARunStoppedBetweenItsRecordAndItsTaskShowsItsExit(t *testing.T) {
	f := &fakeTasks{}
	c := observeClient(t, f)
	started := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	if err := c.saveRun("web", runRecord{StartedAt: started}); err != nil {
		t.Fatal(err)
	}
	decoded := []decodedContainer{c.decodeContainer(listed("web"), "")}
	ended := runRecord{StartedAt: started, FinishedAt: started.Add(time.Minute), ExitCode: 137, Exited: true}
	if err := c.saveRun("web", ended); err != nil { // the stop: its exit recorded, then its task deleted
		t.Fatal(err)
	}
	procs, unanswered, err := c.tasksOf(context.Background(), decoded)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.settleBehindRecords(context.Background(), decoded, "", procs, unanswered); err != nil {
		t.Fatal(err)
	}
	got := c.withTasks(decoded, procs, unanswered)[0]
	if got.Status != engine.StatusExited || got.ExitCode != 137 {
		t.Errorf("status %s exit %d, want exited 137", got.Status, got.ExitCode)
	}
	if n := len(f.askedSorted()); n != 2 {
		t.Errorf("the task was asked for %d times, want twice (once more after the record was read again)", n)
	}
}

// A container whose shim failed the first ask and answers the second is
// no longer unknown.
func TestASecondAskThatAnswersClearsTheUnknown(t *testing.T) {
	f := &fakeTasks{failing: map[string]error{"web": errdefs.ErrUnknown}}
	c := observeClient(t, f)
	if err := c.saveRun("web", runRecord{StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	decoded := []decodedContainer{c.decodeContainer(listed("web"), "")}
	procs, unanswered, err := c.tasksOf(context.Background(), decoded)
	if err != nil || !unanswered["web"] {
		t.Fatalf("unanswered %v, err %v: want web unknown after its shim failed", unanswered, err)
	}
	f.failing = nil
	f.tasks = map[string]*task.Process{"web": {ID: "web", Status: task.Status_RUNNING, Pid: 7}}
	if err := c.settleBehindRecords(context.Background(), decoded, "", procs, unanswered); err != nil {
		t.Fatal(err)
	}
	if got := c.withTasks(decoded, procs, unanswered)[0]; got.Status != engine.StatusRunning || got.Pid != 7 {
		t.Errorf("status %s pid %d, want running 7", got.Status, got.Pid)
	}
}

// The daemon observes a container at its task's start event, before the
// start has recorded its run; the task's shim may be slow to answer (busy
// with the other starts of a bulk up). The observation takes the record as
// soon as it vouches for the running task, and stops waiting for the shim.
func TestAStartIsSeenFromItsRunRecordWithoutWaitingForABusyShim(t *testing.T) {
	h := newFakeHost(t)
	cg := "/lead/" + testID
	h.process(4242, 'S', testShim, 7355405, cg, true)
	h.freezer(cg, "THAWED")
	c := &Client{opts: Options{StateDir: t.TempDir()}.withDefaults(), host: h.hostProc}
	shimGaveUp := make(chan struct{})
	c.getTask = func(ctx context.Context, id string) (*task.Process, error) {
		<-ctx.Done() // a shim that has not answered yet
		close(shimGaveUp)
		return nil, ctx.Err()
	}
	prepared := runRecord{NetNS: "/run/netns/" + testID, Attachments: []attachment{{Network: "p_default"}}}
	if err := c.saveRun(testID, prepared); err != nil {
		t.Fatal(err)
	}
	go func() { // the start records its run 20 ms after the event
		time.Sleep(20 * time.Millisecond)
		started := prepared
		started.StartedAt, started.Proc = time.Now().UTC(), h.identify(4242, testID, testBoot)
		_ = c.saveRun(testID, started)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rr, vouched, proc, err := c.taskOrRecord(ctx, testID, prepared, testBoot)
	if err != nil {
		t.Fatalf("observing a started container whose shim is busy: %v", err)
	}
	if vouched == nil || proc != vouched || proc.Pid != 4242 || proc.Status != task.Status_RUNNING {
		t.Fatalf("task %v (vouched %v), want pid 4242 running, vouched for by its record", proc, vouched)
	}
	if rr.StartedAt.IsZero() || len(rr.Attachments) != 1 {
		t.Errorf("record %+v, want the one the start saved", rr)
	}
	select {
	case <-shimGaveUp:
	case <-time.After(time.Second):
		t.Error("the question to the shim was left waiting")
	}
}

// Without a record that vouches (an exit, a container started by hand),
// the shim's answer is the answer.
func TestWithoutARecordThatVouchesTheShimAnswers(t *testing.T) {
	c := observeClient(t, &fakeTasks{tasks: map[string]*task.Process{"web": {ID: "web", Status: task.Status_STOPPED, ExitStatus: 3}}})
	ended := runRecord{StartedAt: time.Now().Add(-time.Minute), FinishedAt: time.Now(), ExitCode: 3, Exited: true}
	if err := c.saveRun("web", ended); err != nil {
		t.Fatal(err)
	}
	rr, vouched, proc, err := c.taskOrRecord(context.Background(), "web", ended, testBoot)
	if err != nil || vouched != nil || proc.GetStatus() != task.Status_STOPPED || !rr.Exited {
		t.Fatalf("record %+v, vouched %v, task %v, err %v: want the shim's stopped task and the exit recorded", rr, vouched, proc, err)
	}
}
