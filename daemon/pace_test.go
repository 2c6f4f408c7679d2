package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
)

// slowSource is an observingSource whose full observation takes took, as
// asking every shim for its task does; a container observed alone is quick.
type slowSource struct {
	*observingSource
	took time.Duration
}

func (s slowSource) Observe(ctx context.Context, project string) (engine.State, error) {
	time.Sleep(s.took)
	return s.observingSource.Observe(ctx, project)
}

func TestFullRefreshesArePacedWhilePatchesAnswerABurstOfStarts(t *testing.T) {
	src := slowSource{newObservingSource(demoState()), 30 * time.Millisecond}
	d := startDaemon(t, src, Config{Debounce: 5 * time.Millisecond, Resync: time.Hour})
	before := src.observeCount()

	const starts, every = 20, 30 * time.Millisecond
	for i := range starts {
		src.startContainer(running(fmt.Sprintf("demo-w%d-1", i), fmt.Sprintf("w%d", i), "demo",
			map[string]string{"demo_default": fmt.Sprintf("10.1.1.%d", i+1)}))
		time.Sleep(every)
	}
	for i := range starts {
		name := fmt.Sprintf("w%d", i)
		waitFor(t, time.Second, func() bool { return len(answered(d, name)) == 1 })
	}
	// Unpaced, each start would cost a full refresh 5ms after it (about
	// 17 in 600ms); paced, one at most every 9 × 30ms.
	if n := src.observeCount() - before; n > 6 {
		t.Errorf("%d full refreshes during a burst of %d starts over %s, want at most 6", n, starts, starts*every)
	}
}

func TestAChangeNoPatchShowsCutsAPacedWaitShort(t *testing.T) {
	src := slowSource{newObservingSource(demoState()), 30 * time.Millisecond}
	d := startDaemon(t, src, Config{Debounce: 5 * time.Millisecond, Resync: time.Hour})
	src.startContainer(running("demo-db-1", "db", "demo", map[string]string{"demo_default": "10.1.0.7"}))
	before := src.observeCount()
	waitFor(t, time.Second, func() bool { return src.observeCount() > before })
	// Just after a full refresh, a patched start: the next full refresh
	// is paced to about 250ms later.
	src.startContainer(running("demo-cache-1", "cache", "demo", map[string]string{"demo_default": "10.1.0.9"}))
	waitFor(t, time.Second, func() bool { return len(answered(d, "cache")) == 1 })
	before = src.observeCount()

	src.events <- engine.Event{Time: time.Now(), Topic: engine.TopicTaskStart} // nothing to observe alone
	took := waitFor(t, time.Second, func() bool { return src.observeCount() > before })
	if took > 150*time.Millisecond {
		t.Errorf("the full refresh that a change without a patch needs came %s after it, want the debounce (5ms) and the observation (30ms), not the paced wait", took)
	}
}

func TestACreatedContainerIsLeftToTheFullRefresh(t *testing.T) {
	src := newObservingSource(demoState())
	d := startDaemon(t, src, Config{Debounce: 5 * time.Millisecond, Resync: time.Hour})
	before := src.observeCount()
	created := running("demo-db-1", "db", "demo", nil)
	created.Status = engine.StatusCreated
	src.update(func(st *engine.State) { st.Containers = append(st.Containers, created) })
	src.events <- engine.Event{Time: time.Now(), Topic: engine.TopicContainerCreate, ContainerID: created.ID}

	waitFor(t, time.Second, func() bool { return src.observeCount() > before })
	if n := src.observedAlone(); n != 0 {
		t.Errorf("a container without a task was observed alone %d times: it changes no answer", n)
	}
	if st := d.Status(); st.Refresh.Patches != 0 {
		t.Errorf("%d patches for a create event", st.Refresh.Patches)
	}
}
