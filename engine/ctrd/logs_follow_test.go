package ctrd

import (
	"slices"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
)

func ctr(id string, st engine.Status, started time.Time, code int) engine.Container {
	return engine.Container{ID: id, Name: "p-" + id + "-1", Service: id, Status: st, StartedAt: started, ExitCode: code}
}

func names(cs []engine.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestExitWatchReportsEachEndedRunOnce(t *testing.T) {
	since := time.Unix(1000, 0)
	before, during, later := since.Add(-time.Hour), since.Add(time.Second), since.Add(time.Minute)
	all := func(engine.Container) bool { return true }
	w := NewExitWatch(since, all, nil)

	// First look: web has run since before up and still runs; a one-shot
	// started by this up already ended; old ended long before up (history).
	got := w.Update([]engine.Container{
		ctr("web", engine.StatusRunning, before, 0),
		ctr("init", engine.StatusExited, during, 3),
		ctr("old", engine.StatusExited, before, 1),
	})
	if !slices.Equal(names(got), []string{"p-init-1"}) || got[0].ExitCode != 3 {
		t.Fatalf("first update = %v, want the one-shot that ran during up", names(got))
	}
	if w.Live() != 1 {
		t.Errorf("live = %d, want 1 (web)", w.Live())
	}
	// The same observation again reports nothing new.
	if got := w.Update([]engine.Container{ctr("web", engine.StatusRunning, before, 0), ctr("init", engine.StatusExited, during, 3)}); len(got) != 0 {
		t.Errorf("repeated observation reported %v", names(got))
	}
	// web ends, though it started before up: it was seen running.
	got = w.Update([]engine.Container{ctr("web", engine.StatusExited, before, 137), ctr("init", engine.StatusExited, during, 3)})
	if !slices.Equal(names(got), []string{"p-web-1"}) || got[0].ExitCode != 137 || w.Live() != 0 {
		t.Fatalf("web's exit = %v (live %d)", names(got), w.Live())
	}
	// The one-shot runs again (started by someone) and ends: a new run.
	w.Update([]engine.Container{ctr("init", engine.StatusRunning, later, 0)})
	got = w.Update([]engine.Container{ctr("init", engine.StatusExited, later, 0)})
	if !slices.Equal(names(got), []string{"p-init-1"}) {
		t.Errorf("second run's exit = %v", names(got))
	}
}

func TestExitWatchCountsRestartsAsLiveUntilStopping(t *testing.T) {
	since := time.Unix(1000, 0)
	run1, run2 := since.Add(time.Second), since.Add(2*time.Second)
	restarts := func(c engine.Container) bool { return c.Service == "crashy" }
	w := NewExitWatch(since, func(engine.Container) bool { return true }, restarts)
	w.Update([]engine.Container{ctr("crashy", engine.StatusRunning, run1, 0)})
	if got := w.Update([]engine.Container{ctr("crashy", engine.StatusExited, run1, 1)}); len(got) != 1 {
		t.Fatalf("crash not reported: %v", names(got))
	}
	if w.Live() != 1 {
		t.Errorf("a container its policy restarts is live, got %d", w.Live())
	}
	w.Update([]engine.Container{ctr("crashy", engine.StatusRunning, run2, 0)})
	w.NoRestarts()
	w.Update([]engine.Container{ctr("crashy", engine.StatusExited, run2, 143)})
	if w.Live() != 0 {
		t.Errorf("while stopping nothing restarts, live = %d", w.Live())
	}
}

func TestExitWatchIgnoresUnwatchedAndForgetsRemoved(t *testing.T) {
	since := time.Unix(1000, 0)
	w := NewExitWatch(since, func(c engine.Container) bool { return c.Service == "web" }, nil)
	w.Update([]engine.Container{ctr("web", engine.StatusRunning, since, 0), ctr("db", engine.StatusRunning, since, 0)})
	if w.Live() != 1 {
		t.Fatalf("live = %d, want only web", w.Live())
	}
	if got := w.Update([]engine.Container{ctr("db", engine.StatusExited, since, 1)}); len(got) != 0 || w.Live() != 0 {
		t.Errorf("removed web / unwatched db: got %v, live %d", names(got), w.Live())
	}
}
