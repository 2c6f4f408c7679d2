package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
)

// observingSource is a fakeSource that can also observe one container
// alone, and whose full observations the test can hold: an Observe takes
// the state as it is when it starts, then waits while the hold is on.
type observingSource struct {
	*fakeSource
	hmu      sync.Mutex
	hold     chan struct{} // nil: observations return at once
	held     chan struct{} // an Observe started while the hold was on
	alone    int
	aloneErr error // returned by ObserveContainer when set
	// stuck is a container whose observation alone waits until it is
	// closed (a shim that does not answer).
	stuck   string
	unstuck chan struct{}
}

func newObservingSource(st engine.State) *observingSource {
	return &observingSource{fakeSource: newFakeSource(st), held: make(chan struct{}, 16)}
}

func (f *observingSource) Observe(ctx context.Context, project string) (engine.State, error) {
	st, _ := f.fakeSource.Observe(ctx, project)
	f.hmu.Lock()
	hold := f.hold
	f.hmu.Unlock()
	if hold != nil {
		f.held <- struct{}{}
		select {
		case <-hold:
		case <-ctx.Done():
			return engine.State{}, ctx.Err()
		}
	}
	return st, nil
}

func (f *observingSource) ObserveContainer(ctx context.Context, id string) (engine.Container, error) {
	f.hmu.Lock()
	f.alone++
	err := f.aloneErr
	stuck, unstuck := f.stuck, f.unstuck
	f.hmu.Unlock()
	if id == stuck {
		<-unstuck
	}
	if err != nil {
		return engine.Container{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.st.Containers {
		if c.ID == id {
			return c, nil
		}
	}
	return engine.Container{}, fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
}

// holdObserves makes every full observation from now on wait until release.
func (f *observingSource) holdObserves() (release func()) {
	hold := make(chan struct{})
	f.hmu.Lock()
	f.hold = hold
	f.hmu.Unlock()
	return sync.OnceFunc(func() {
		f.hmu.Lock()
		f.hold = nil
		f.hmu.Unlock()
		close(hold)
	})
}

func (f *observingSource) observedAlone() int {
	f.hmu.Lock()
	defer f.hmu.Unlock()
	return f.alone
}

func (f *observingSource) update(fn func(*engine.State)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.Containers = slices.Clone(st.Containers)
	fn(&st)
	f.st = st
}

func (f *observingSource) startContainer(c engine.Container) {
	f.update(func(st *engine.State) { st.Containers = append(st.Containers, c) })
	f.events <- engine.Event{Time: time.Now(), Topic: engine.TopicTaskStart, ContainerID: c.ID}
}

func (f *observingSource) waitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-f.held:
	case <-time.After(2 * time.Second):
		t.Fatal("no full observation started")
	}
}

func demoState() engine.State {
	return engine.State{
		Networks:   []engine.Network{loopNet("demo_default", "127.0.0.1")},
		Containers: []engine.Container{running("demo-web-1", "web", "demo", map[string]string{"demo_default": "10.1.0.2"})},
	}
}

func answered(d *Daemon, name string) []string { return lookup(d, "demo_default", name) }

func TestAStartedContainerIsAnsweredWhileAFullRefreshIsHeld(t *testing.T) {
	src := newObservingSource(demoState())
	d := startDaemon(t, src, Config{Resync: time.Hour})
	release := src.holdObserves()
	defer release()

	src.startContainer(running("demo-db-1", "db", "demo", map[string]string{"demo_default": "10.1.0.7"}))
	took := waitFor(t, time.Second, func() bool { return slices.Equal(answered(d, "db"), []string{"10.1.0.7"}) })
	t.Logf("event to answer with the full refresh held: %s", took)
	if got := answered(d, "web"); !slices.Equal(got, []string{"10.1.0.2"}) {
		t.Errorf("the patch lost the other containers: web answers %v", got)
	}
	st := d.Status()
	if st.Refresh.Count != 1 || st.Refresh.Patches == 0 {
		t.Errorf("want the answer from a patch and only the first refresh done; stats %+v", st.Refresh)
	}
	if l := st.Refresh.LastEventLatency; l <= 0 || l > 100*time.Millisecond {
		t.Errorf("event latency %s, want measured and under 100ms", l)
	}
	if !slices.ContainsFunc(st.Networks[0].Names, func(n Name) bool { return n.Name == "db" }) {
		t.Errorf("status does not list the patched name: %+v", st.Networks[0].Names)
	}
}

// exitWeb makes demo's web container exit and waits until it is no longer
// answered.
func exitWeb(t *testing.T, src *observingSource, d *Daemon) {
	t.Helper()
	src.update(func(st *engine.State) { st.Containers[0].Status = engine.StatusExited })
	src.events <- engine.Event{Time: time.Now(), Topic: engine.TopicTaskExit, ContainerID: "demo-web-1-id"}
	waitFor(t, time.Second, func() bool { return len(answered(d, "web")) == 0 })
}

func TestAnExitedContainerIsNoLongerAnsweredWhileAFullRefreshIsHeld(t *testing.T) {
	src := newObservingSource(demoState())
	d := startDaemon(t, src, Config{Resync: time.Hour})
	release := src.holdObserves()
	defer release()

	exitWeb(t, src, d)
	if n := d.Status().Refresh.Count; n != 1 {
		t.Errorf("%d refreshes done, want the exit shown by a patch alone", n)
	}
}

func TestADeletedContainerIsNoLongerAnswered(t *testing.T) {
	src := newObservingSource(demoState())
	d := startDaemon(t, src, Config{Resync: time.Hour})
	release := src.holdObserves()
	defer release()

	src.update(func(st *engine.State) { st.Containers = nil })
	src.events <- engine.Event{Time: time.Now(), Topic: engine.TopicContainerDelete, ContainerID: "demo-web-1-id"}
	waitFor(t, time.Second, func() bool { return len(answered(d, "web")) == 0 })
}

// A down sends three events per container (task exit, task delete,
// container delete); only the exit needs containerd asked: the deleted task
// changes no answer, and a deleted container is gone.
func TestADownObservesEachContainerOnce(t *testing.T) {
	src := newObservingSource(demoState())
	d := startDaemon(t, src, Config{Resync: time.Hour})
	release := src.holdObserves()
	defer release()

	exitWeb(t, src, d)
	src.update(func(st *engine.State) { st.Containers = nil })
	src.events <- engine.Event{Time: time.Now(), Topic: engine.TopicTaskDelete, ContainerID: "demo-web-1-id"}
	src.events <- engine.Event{Time: time.Now(), Topic: engine.TopicContainerDelete, ContainerID: "demo-web-1-id"}
	waitFor(t, time.Second, func() bool { return d.Status().Refresh.Patches >= 2 })
	if n := src.observedAlone(); n != 1 {
		t.Errorf("containerd asked about the container %d times, want once (for its exit)", n)
	}
	if got := answered(d, "web"); len(got) != 0 {
		t.Errorf("the deleted container is answered: %v", got)
	}
}

func TestAFullRefreshThatStartedBeforeAPatchDoesNotUndoIt(t *testing.T) {
	src := newObservingSource(demoState())
	// No refresh but the one asked for: the event's would show db anyway.
	d := startDaemon(t, src, Config{Debounce: time.Hour, Resync: time.Hour})
	release := src.holdObserves()
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	refreshed := make(chan error, 1)
	go func() { refreshed <- d.Refresh(ctx) }()
	src.waitHeld(t) // this refresh took the state without db

	src.startContainer(running("demo-db-1", "db", "demo", map[string]string{"demo_default": "10.1.0.7"}))
	waitFor(t, time.Second, func() bool { return len(answered(d, "db")) == 1 })
	release()
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if got := answered(d, "db"); !slices.Equal(got, []string{"10.1.0.7"}) {
		t.Errorf("after the older refresh was swapped in, db answers %v, want 10.1.0.7", got)
	}
}

func TestAFullRefreshThatStartedAfterAPatchReplacesIt(t *testing.T) {
	src := newObservingSource(demoState())
	// No refresh but the one asked for, after the patch.
	d := startDaemon(t, src, Config{Debounce: time.Hour, Resync: time.Hour})
	src.startContainer(running("demo-db-1", "db", "demo", map[string]string{"demo_default": "10.1.0.7"}))
	waitFor(t, time.Second, func() bool { return len(answered(d, "db")) == 1 })

	// The engine changes without an event for db: only a refresh sees it.
	src.update(func(st *engine.State) { st.Containers[1].Addresses = map[string]string{"demo_default": "10.1.0.8"} })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := answered(d, "db"); !slices.Equal(got, []string{"10.1.0.8"}) {
		t.Errorf("after a newer refresh, db answers %v, want the refresh's 10.1.0.8", got)
	}
	d.pub.Lock()
	left := len(d.answers.patches)
	d.pub.Unlock()
	if left != 0 {
		t.Errorf("%d patches kept after a newer refresh, want none", left)
	}
}

func TestAContainerThatCannotBeObservedAloneIsLeftToTheFullRefresh(t *testing.T) {
	src := newObservingSource(demoState())
	src.aloneErr = errors.New("shim not answering")
	d := startDaemon(t, src, Config{Resync: time.Hour})
	src.startContainer(running("demo-db-1", "db", "demo", map[string]string{"demo_default": "10.1.0.7"}))
	waitFor(t, time.Second, func() bool { return len(answered(d, "db")) == 1 })
	st := d.Status().Refresh
	if st.Patches != 0 || st.Count < 2 || st.LastEventLatency <= 0 {
		t.Errorf("want the answer and its latency from a full refresh; stats %+v", st)
	}
}

func TestASourceThatCannotObserveOneContainerIsRefreshedAsBefore(t *testing.T) {
	src := newFakeSource(demoState())
	d := startDaemon(t, src, Config{Resync: time.Hour})
	before := src.observeCount()
	src.set(engine.State{Networks: demoState().Networks, Containers: append(demoState().Containers,
		running("demo-db-1", "db", "demo", map[string]string{"demo_default": "10.1.0.7"}))})
	src.events <- engine.Event{Time: time.Now(), Topic: engine.TopicTaskStart, ContainerID: "demo-db-1-id"}
	waitFor(t, time.Second, func() bool { return len(answered(d, "db")) == 1 })
	st := d.Status().Refresh
	if st.Patches != 0 || src.observeCount() <= before || st.LastEventLatency <= 0 {
		t.Errorf("want the answer and its latency from a full refresh; stats %+v", st)
	}
}

// Many containers starting at once are each observed alone, and the full
// refresh they also cause (held here) delays none of them.
func TestABurstOfStartsIsAnsweredWithoutWaitingForTheRefresh(t *testing.T) {
	src := newObservingSource(demoState())
	d := startDaemon(t, src, Config{Resync: time.Hour})
	release := src.holdObserves()
	defer release()
	for i := range 10 {
		src.startContainer(running(fmt.Sprintf("demo-w-%d", i), "w", "demo", map[string]string{"demo_default": fmt.Sprintf("10.1.1.%d", i+1)}))
	}
	waitFor(t, time.Second, func() bool { return len(answered(d, "w")) == 10 })
	if n := src.observedAlone(); n < 10 {
		t.Errorf("%d containers observed alone, want each of the 10", n)
	}
	if n := d.Status().Refresh.Count; n != 1 {
		t.Errorf("%d refreshes done, want only the first", n)
	}
}

func TestAContainerWhoseObservationHangsDoesNotHoldBackAnother(t *testing.T) {
	src := newObservingSource(demoState())
	src.stuck, src.unstuck = "demo-slow-1-id", make(chan struct{})
	d := startDaemon(t, src, Config{Resync: time.Hour})
	release := src.holdObserves()
	defer release()
	defer close(src.unstuck)

	src.startContainer(running("demo-slow-1", "slow", "demo", map[string]string{"demo_default": "10.1.0.6"}))
	waitFor(t, time.Second, func() bool { return src.observedAlone() == 1 }) // slow's observation hangs
	src.startContainer(running("demo-db-1", "db", "demo", map[string]string{"demo_default": "10.1.0.7"}))
	waitFor(t, time.Second, func() bool { return len(answered(d, "db")) == 1 })
	if got := answered(d, "slow"); len(got) != 0 {
		t.Errorf("slow answers %v before its observation ended", got)
	}
}
