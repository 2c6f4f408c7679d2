package daemon

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
)

// healthSource is a fakeSource whose containers' probes answer what the
// test says, and which makes the status the daemon records observable.
type healthSource struct {
	*fakeSource
	mu     sync.Mutex
	checks map[string]*engine.Healthcheck
	pass   map[string]bool
	probes map[string]int
}

func (h *healthSource) Healthcheck(ctx context.Context, id string) (*engine.Healthcheck, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.checks[id], nil
}

func (h *healthSource) CheckHealth(ctx context.Context, id string, started time.Time, hc engine.Healthcheck, inStart bool) (string, error) {
	h.mu.Lock()
	h.probes[id]++
	status := "unhealthy"
	switch {
	case h.pass[id]:
		status = "healthy"
	case inStart:
		status = "starting"
	}
	h.mu.Unlock()
	h.fakeSource.mu.Lock()
	ctrs := slices.Clone(h.fakeSource.st.Containers) // observers hold the old slice
	for i := range ctrs {
		if ctrs[i].ID == id {
			ctrs[i].Health = status
		}
	}
	h.fakeSource.st.Containers = ctrs
	h.fakeSource.mu.Unlock()
	return status, nil
}

func (h *healthSource) setPass(id string, ok bool) {
	h.mu.Lock()
	h.pass[id] = ok
	h.mu.Unlock()
}

func (h *healthSource) probeCount(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.probes[id]
}

// The daemon probes running containers that have a healthcheck, and a
// replica that turns unhealthy leaves the DNS answers at once.
func TestHealthRunnerProbesAndDNSDropsAnUnhealthyReplica(t *testing.T) {
	addrs := func(ip string) map[string]string { return map[string]string{"p_default": ip} }
	st := engine.State{
		Networks:   []engine.Network{loopNet("p_default", "127.0.0.1")},
		Containers: []engine.Container{running("p-web-1", "web", "p", addrs("10.0.0.2")), running("p-web-2", "web", "p", addrs("10.0.0.3")), running("p-db-1", "db", "p", addrs("10.0.0.4"))},
	}
	src := &healthSource{
		fakeSource: newFakeSource(st),
		checks: map[string]*engine.Healthcheck{
			"p-web-1-id": {Test: []string{"CMD", "true"}, Interval: 5 * time.Millisecond, Timeout: time.Second, Retries: 1},
			"p-web-2-id": {Test: []string{"CMD", "true"}, Interval: 5 * time.Millisecond, Timeout: time.Second, Retries: 1},
		},
		pass:   map[string]bool{"p-web-1-id": true, "p-web-2-id": true},
		probes: map[string]int{},
	}
	d := startDaemon(t, src, Config{})
	waitFor(t, 2*time.Second, func() bool { return src.probeCount("p-web-1-id") > 2 && src.probeCount("p-web-2-id") > 2 })
	if n := src.probeCount("p-db-1-id"); n != 0 {
		t.Fatalf("a container without a healthcheck was probed %d times", n)
	}
	waitFor(t, 2*time.Second, func() bool { return len(lookup(d, "p_default", "web")) == 2 })
	src.setPass("p-web-2-id", false)
	waitFor(t, 2*time.Second, func() bool {
		got := lookup(d, "p_default", "web")
		return len(got) == 1 && got[0] == "10.0.0.2"
	})
}

// A container that stops is no longer probed.
func TestHealthRunnerStopsWhenTheTaskEnds(t *testing.T) {
	c := running("p-web-1", "web", "p", nil)
	src := &healthSource{
		fakeSource: newFakeSource(engine.State{Containers: []engine.Container{c}}),
		checks:     map[string]*engine.Healthcheck{c.ID: {Test: []string{"CMD", "true"}, Interval: 5 * time.Millisecond, Timeout: time.Second, Retries: 1}},
		pass:       map[string]bool{c.ID: true},
		probes:     map[string]int{},
	}
	d := startDaemon(t, src, Config{})
	waitFor(t, 2*time.Second, func() bool { return src.probeCount(c.ID) > 0 })
	c.Status = engine.StatusExited
	src.set(engine.State{Containers: []engine.Container{c}})
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // a probe under way may still finish
	n := src.probeCount(c.ID)
	time.Sleep(50 * time.Millisecond)
	if got := src.probeCount(c.ID); got != n {
		t.Fatalf("probed %d more times after the task ended", got-n)
	}
}

// While a container is starting within its start period it is probed
// every StartInterval; once healthy, every Interval.
func TestHealthRunnerUsesStartIntervalDuringTheStartPeriod(t *testing.T) {
	c := running("p-web-1", "web", "p", nil)
	c.StartedAt = time.Now()
	src := &healthSource{
		fakeSource: newFakeSource(engine.State{Containers: []engine.Container{c}}),
		checks: map[string]*engine.Healthcheck{c.ID: {
			Test: []string{"CMD", "true"}, Interval: time.Hour, StartInterval: 5 * time.Millisecond,
			StartPeriod: time.Hour, Timeout: time.Second, Retries: 1,
		}},
		pass:   map[string]bool{},
		probes: map[string]int{},
	}
	startDaemon(t, src, Config{})
	waitFor(t, 2*time.Second, func() bool { return src.probeCount(c.ID) >= 3 })
	src.setPass(c.ID, true)
	n := src.probeCount(c.ID)
	waitFor(t, 2*time.Second, func() bool { return src.probeCount(c.ID) > n })
	time.Sleep(20 * time.Millisecond)
	n = src.probeCount(c.ID)
	time.Sleep(60 * time.Millisecond)
	if got := src.probeCount(c.ID); got != n {
		t.Fatalf("healthy, it was probed %d more times within 60ms although its interval is an hour", got-n)
	}
}

func TestProbesOfManyContainersFallDueTogetherOnAGrid(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	due := map[int]int{} // probes by their time within the second
	for i := range 30 {
		// 30 containers whose previous probes ended at scattered times.
		now := base.Add(time.Duration(i) * 33 * time.Millisecond)
		wait := onProbeGrid(now, time.Second)
		if wait < 950*time.Millisecond || wait > 1050*time.Millisecond {
			t.Fatalf("probe %d waits %s, want within 5%% of the 1s interval", i, wait)
		}
		due[now.Add(wait).Nanosecond()]++
	}
	if len(due) > 10 {
		t.Errorf("30 probes due every second fall on %d distinct times of the second, want at most 10 (a 100ms grid)", len(due))
	}
}

func TestAProbeThatStaysOnTheGridKeepsItsIntervalExactly(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 7, 300_000_000, time.UTC)
	for _, every := range []time.Duration{time.Second, 5 * time.Second, 30 * time.Second} {
		if wait := onProbeGrid(now, every); wait != every {
			t.Errorf("every %s from a grid point waits %s", every, wait)
		}
	}
}

func TestShortIntervalsGetAFinerGrid(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 3_000_000, time.UTC)
	if wait := onProbeGrid(now, 50*time.Millisecond); wait < 47500*time.Microsecond || wait > 52500*time.Microsecond {
		t.Errorf("a 50ms start_interval waits %s, want within 5%%", wait)
	}
}
