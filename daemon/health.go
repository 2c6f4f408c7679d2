package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/stackdev/stack/engine"
)

// HealthChecker runs containers' healthchecks; a Source that is one
// (engine/ctrd.Client) gets its running containers checked.
type HealthChecker interface {
	// Healthcheck is container id's check with defaults filled in, nil
	// when it has none.
	Healthcheck(ctx context.Context, id string) (*engine.Healthcheck, error)
	// CheckHealth probes once, records the result for the task started at
	// started and returns the container's status.
	CheckHealth(ctx context.Context, id string, started time.Time, hc engine.Healthcheck, inStart bool) (string, error)
}

// healthRunner is the check loop of one task; cancel is nil for a task
// without a healthcheck.
type healthRunner struct {
	started time.Time
	cancel  context.CancelFunc
}

// healthRunners is owned by the refresh loop.
type healthRunners struct {
	byID map[string]healthRunner
	wg   sync.WaitGroup
}

// syncHealth starts a check loop for each running task with a healthcheck
// that has none yet and stops those of tasks that ended or were replaced.
func (d *Daemon) syncHealth(ctx context.Context, st engine.State) {
	hc, ok := d.cfg.Source.(HealthChecker)
	if !ok {
		return
	}
	if d.health.byID == nil {
		d.health.byID = map[string]healthRunner{}
	}
	running := map[string]time.Time{}
	for _, c := range st.Containers {
		if c.Status == engine.StatusRunning {
			running[c.ID] = c.StartedAt
		}
	}
	for id, r := range d.health.byID {
		if started, ok := running[id]; !ok || !started.Equal(r.started) {
			r.stop()
			delete(d.health.byID, id)
		}
	}
	for id, started := range running {
		if _, ok := d.health.byID[id]; ok {
			continue
		}
		check, err := hc.Healthcheck(ctx, id)
		if err != nil {
			d.log.Warn("daemon: cannot read the healthcheck; retrying on the next refresh", "container", id, "err", err)
			continue
		}
		r := healthRunner{started: started}
		if check != nil {
			rctx, cancel := context.WithCancel(ctx)
			r.cancel = cancel
			d.health.wg.Go(func() { d.runHealth(rctx, hc, id, started, *check) })
		}
		d.health.byID[id] = r
	}
}

func (r healthRunner) stop() {
	if r.cancel != nil {
		r.cancel()
	}
}

// stopHealth ends every check loop and waits for them.
func (d *Daemon) stopHealth() {
	for _, r := range d.health.byID {
		r.stop()
	}
	d.health.wg.Wait()
}

// runHealth probes one task until ctx ends: every StartInterval while it
// is starting within its start period, else every Interval. A change of
// status asks for a refresh, so that DNS answers follow it.
func (d *Daemon) runHealth(ctx context.Context, hc HealthChecker, id string, started time.Time, check engine.Healthcheck) {
	if started.IsZero() {
		started = time.Now()
	}
	startEnd := started.Add(check.StartPeriod)
	status := ""
	for {
		inStart := time.Now().Before(startEnd) && (status == "" || status == "starting")
		every := check.Interval
		if inStart {
			every = check.StartInterval
		}
		if !sleep(ctx, onProbeGrid(time.Now(), every)) {
			return
		}
		inStart = time.Now().Before(startEnd)
		now, err := hc.CheckHealth(ctx, id, started, check, inStart)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.log.Warn("daemon: healthcheck not recorded", "container", id, "err", err)
			continue
		}
		if now != status {
			d.log.Debug("daemon: health changed", "container", id, "from", status, "to", now)
			status = now
			d.changed(time.Now())
		}
	}
}

// probeGridMax is the widest step of the grid that probes wait for.
const probeGridMax = 100 * time.Millisecond

// onProbeGrid is how long to wait from now for a probe due every after
// it: until the nearest point of a grid whose step is a tenth of every (at
// most probeGridMax). Probes of many containers then fall due together
// and run in one wake-up of the daemon instead of one each; with 30
// containers checked every second that is at most 10 wake-ups a second
// instead of 30, and the Go runtime's cost of each wake-up (its monitor
// thread polling every 20 µs for a while, idle threads woken and parked
// again) is most of what the daemon spends on a probe. A probe moves by at
// most half a step, so the intervals stay within 5% of the configured one
// and keep their average.
func onProbeGrid(now time.Time, every time.Duration) time.Duration {
	step := min(every/10, probeGridMax)
	if step <= 0 {
		return every
	}
	return now.Add(every).Round(step).Sub(now)
}
