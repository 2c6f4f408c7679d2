package ctrd

import (
	"slices"
	"strings"
	"time"

	"github.com/stackdev/stack/engine"
)

// ExitWatch follows the runs of a project's containers across successive
// observations and reports each run that ended, once, with its exit code:
// what an attached `up` prints as "<name> exited with code N" and decides
// on. It is level-based — it compares observations, it never replays
// events — so a missed event costs latency, never an exit.
type ExitWatch struct {
	since    time.Time
	watched  func(engine.Container) bool
	restarts func(engine.Container) bool
	live     map[string]time.Time // ID → StartedAt of the run seen running or paused
	ended    map[string]time.Time // ID → StartedAt of the last run reported ended
	// coming are containers whose run ended and that the engine will start
	// again (restart policy): they still count as live.
	coming map[string]bool
}

// NewExitWatch watches the containers watched accepts. A run that started
// at or after since and has already ended when first observed is reported
// too (a one-shot that ran while up was applying its plan); an older ended
// run is history. restarts, when not nil, says whether an ended run will be
// started again by the restart policy.
func NewExitWatch(since time.Time, watched, restarts func(engine.Container) bool) *ExitWatch {
	return &ExitWatch{
		since: since, watched: watched, restarts: restarts,
		live: map[string]time.Time{}, ended: map[string]time.Time{}, coming: map[string]bool{},
	}
}

// Update takes one observation of the project and returns the watched
// containers whose run ended since the previous one, in name order, each
// with its exit code. A container that disappeared is dropped silently (it
// was removed, its exit was the removal's business).
func (w *ExitWatch) Update(containers []engine.Container) []engine.Container {
	var out []engine.Container
	seen := map[string]bool{}
	for _, c := range containers {
		if !w.watched(c) {
			continue
		}
		seen[c.ID] = true
		if w.update(c) {
			out = append(out, c)
		}
	}
	for _, m := range []map[string]time.Time{w.live, w.ended} {
		for id := range m {
			if !seen[id] {
				delete(m, id)
			}
		}
	}
	for id := range w.coming {
		if !seen[id] {
			delete(w.coming, id)
		}
	}
	slices.SortFunc(out, func(x, y engine.Container) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// update records one container and says whether a run of it just ended.
func (w *ExitWatch) update(c engine.Container) bool {
	switch c.Status {
	case engine.StatusRunning, engine.StatusPaused:
		w.live[c.ID] = c.StartedAt
		delete(w.coming, c.ID)
		return false
	case engine.StatusExited:
		_, wasLive := w.live[c.ID]
		delete(w.live, c.ID)
		if last, ok := w.ended[c.ID]; ok && last.Equal(c.StartedAt) {
			return false // this run was reported already
		}
		if !wasLive && c.StartedAt.Before(w.since) {
			return false
		}
		w.ended[c.ID] = c.StartedAt
		if w.restarts != nil && w.restarts(c) {
			w.coming[c.ID] = true
		} else {
			delete(w.coming, c.ID)
		}
		return true
	}
	return false
}

// NoRestarts stops counting on restart policies: the project is being
// stopped, so nothing that ends will be started again.
func (w *ExitWatch) NoRestarts() {
	w.restarts = nil
	clear(w.coming)
}

// Live is how many watched containers run, are paused, or will be started
// again by their restart policy.
func (w *ExitWatch) Live() int { return len(w.live) + len(w.coming) }
