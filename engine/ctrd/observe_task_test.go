package ctrd

import (
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/task"

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
func TestTaskBehindRecordOnlyWhenTheRecordSaysARunGoesOn(t *testing.T) {
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
