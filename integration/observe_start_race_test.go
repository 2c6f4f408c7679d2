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
// task is created while CNI ADD runs, the run record gets the new start
// once the task runs, and an observation reads the records and the tasks
// one after the other: each of those used to show exactly that, whether
// the last run was stopped by the user or exited by itself, and whether
// stack or the daemon's restart starts it again. A stop, which deletes the
// task, records the run's end first, and is watched too.
func TestDriverObserveNeverShowsAStartingContainerAsItsTaskGone(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	// Other running tasks make an observation slower, which widens the
	// window a start can land in.
	for i := range 4 {
		e.run(e.spec(fmt.Sprintf("busy%d", i), n.Name))
	}
	stopped := e.spec("stopped", n.Name)
	exits := e.spec("exits", n.Name)
	exits.Process.Command = []string{"sh", "-c", "sleep 0.2; exit 3"}
	restarted := exits
	restarted.Name, restarted.Service = e.project+"-restarted-1", "restarted"
	start := func(id string) error { return e.d.StartContainer(e.ctx, id) }
	// The daemon's restart: the exited task deleted (its exit recorded
	// first), the network set up anew, a new task started.
	restart := func(id string) error { _, err := e.d.AutoRestart(e.ctx, id, 0); return err }
	waitExited := func(t *testing.T, id string) (int, int) {
		waitFor(t, func() bool { return e.container(id).Status == engine.StatusExited })
		return 0, 0
	}
	for _, tc := range []struct {
		spec    engine.ContainerSpec
		start   func(id string) error
		endsRun func(t *testing.T, id string) (observed, taskGone int)
	}{
		{stopped, start, func(t *testing.T, id string) (int, int) {
			return observeDuring(t, e, id, func() error { return e.d.StopContainer(e.ctx, id, 100*time.Millisecond) })
		}},
		{exits, start, waitExited},
		{restarted, restart, waitExited},
	} {
		t.Run(tc.spec.Service, func(t *testing.T) {
			id, err := e.d.CreateContainer(e.ctx, tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			const starts = 8
			var observed, taskGone int
			for range starts {
				o, g := observeDuring(t, e, id, func() error { return tc.start(id) })
				observed, taskGone = observed+o, taskGone+g
				o, g = tc.endsRun(t, id)
				observed, taskGone = observed+o, taskGone+g
			}
			t.Logf("%d observations during %d starts and their ends", observed, starts)
			if taskGone > 0 {
				t.Errorf("%d of %d observations showed the container as one whose task vanished", taskGone, observed)
			}
			if observed < starts {
				t.Errorf("only %d observations during %d starts: the test did not look", observed, starts)
			}
		})
	}
}

// observeDuring runs act (a start or a stop of container id) while two
// goroutines observe the container without pause (the whole Observe, and
// ObserveContainer), and counts the observations and those that show it
// created after a run.
func observeDuring(t *testing.T, e *driverEnv, id string, act func() error) (observed, taskGone int) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	watch := func(which string, observe func() (engine.Container, error)) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := observe()
			if err != nil {
				t.Errorf("%s: %v", which, err)
				return
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
	go watch("Observe", func() (engine.Container, error) {
		st, err := e.d.Observe(e.ctx, e.project)
		if err != nil {
			return engine.Container{}, err
		}
		for _, c := range st.Containers {
			if c.ID == id {
				return c, nil
			}
		}
		return engine.Container{}, fmt.Errorf("container %s not observed", id)
	})
	go watch("ObserveContainer", func() (engine.Container, error) { return e.d.ObserveContainer(e.ctx, id) })
	err := act()
	// Observations that begin after act returned must agree too.
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return observed, taskGone
}
