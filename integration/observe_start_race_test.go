package integration

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
)

// While a container starts, every observation shows it either as it was
// before (exited) or as it is after (running), never as a container that
// ran and whose task vanished: the daemon takes that for containerd having
// lost the task, and decides its restart for a run that is going on. The
// task list and the run records are read at the same time, so a start
// that lands between the two used to show exactly that.
func TestDriverObserveNeverShowsAStartingContainerAsItsTaskGone(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	// Other running tasks make the task list slower (containerd 1.6 asks
	// each shim), which widens the window a start can land in.
	for i := range 4 {
		e.run(e.spec(fmt.Sprintf("busy%d", i), n.Name))
	}
	cycled := e.spec("cycled", n.Name)
	id, err := e.d.CreateContainer(e.ctx, cycled)
	if err != nil {
		t.Fatal(err)
	}
	const starts = 15
	var observed, taskGone int
	for range starts {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		watch := func(which string, observe func() (engine.Container, bool)) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, ok := observe()
				if !ok {
					continue
				}
				mu.Lock()
				observed++
				if c.Status == engine.StatusCreated && !c.StartedAt.IsZero() {
					if taskGone < 3 {
						t.Logf("%s showed it created, with its last run's start (%s)", which, c.StartedAt)
					}
					taskGone++
				}
				mu.Unlock()
			}
		}
		wg.Add(2)
		go watch("observe", func() (engine.Container, bool) {
			st, err := e.d.Observe(e.ctx, e.project)
			if err != nil {
				t.Error(err)
				return engine.Container{}, false
			}
			for _, c := range st.Containers {
				if c.ID == id {
					return c, true
				}
			}
			return engine.Container{}, false
		})
		go watch("alone", func() (engine.Container, bool) {
			c, err := e.d.ObserveContainer(e.ctx, id)
			if err != nil {
				t.Error(err)
				return engine.Container{}, false
			}
			return c, true
		})
		err := e.d.StartContainer(e.ctx, id)
		// Observations that begin after the start returned must agree
		// too; let a few of them run before stopping the watchers.
		time.Sleep(20 * time.Millisecond)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		// The watchers are stopped: a stop deletes the task before it
		// records the exit, a window the user-stop mark covers.
		if err := e.d.StopContainer(e.ctx, id, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d observations during %d starts", observed, starts)
	if taskGone > 0 {
		t.Errorf("%d of %d observations showed the starting container as one whose task vanished", taskGone, observed)
	}
	if observed < starts {
		t.Errorf("only %d observations during %d starts: the test did not look", observed, starts)
	}
}
