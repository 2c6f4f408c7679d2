package daemon

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stackdev/stack/engine"
)

// Restarter starts a container's task again for its restart policy; a
// Source that is one (engine/ctrd.Client) gets its policies enforced.
type Restarter interface {
	// AutoRestart starts container id again after delay, with its
	// network set up anew, unless the user stopped it meanwhile or a task
	// runs; it reports whether it started one and counts the restart. It
	// may release what the exited task held before the delay.
	AutoRestart(ctx context.Context, id string, delay time.Duration) (bool, error)
}

// restartTrack is what the daemon knows of one container's restarts.
type restartTrack struct {
	name    string
	policy  string
	run     time.Time // StartedAt of the run whose end was decided
	decided bool
	// byGone: the run's task was seen gone and the policy refused to
	// restart it (on-failure: the exit code is lost). If the same run then
	// shows an exit, the task was there after all (a start observed
	// half-way), and the exit is decided anew. A gone task that the
	// daemon restarted is not: an exit seen with that run's start is the
	// new run's, observed before its record was saved.
	byGone bool
	hist   History
	seen   int // the restart count last observed
	fails  int // restarts that failed to start, since the user's start
	last   Decision
	due    time.Time // when the scheduled restart runs
	cancel context.CancelFunc
}

// restartRunners is owned by the refresh loop, but errs, which the restart
// goroutines fill, is guarded by the daemon's mutex.
type restartRunners struct {
	byID   map[string]*restartTrack
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   map[string]string // by container: the last restart that failed
	// unstarted holds the containers whose restart found nothing to do
	// (a task runs, or the user stopped it): the decision rested on an
	// observation already out of date, and the next one decides again.
	unstarted map[string]bool
}

// syncRestarts decides, for each container whose run ended since the last
// refresh, whether its policy restarts it, and schedules the restart after
// its backoff. Containers whose task is gone (containerd or the host
// restarted) are started at once, in depends_on order.
func (d *Daemon) syncRestarts(ctx context.Context, st engine.State) {
	r, ok := d.cfg.Source.(Restarter)
	if !ok {
		return
	}
	rs := &d.restarts
	if rs.byID == nil {
		rs.byID = map[string]*restartTrack{}
		rs.ctx, rs.cancel = context.WithCancel(ctx)
	}
	failed, unstarted := d.takeRestartOutcomes()
	var gone []engine.Container
	seen := map[string]bool{}
	for _, c := range st.Containers {
		seen[c.ID] = true
		t := rs.track(c)
		if _, ok := failed[c.ID]; ok {
			t.decided, t.fails = false, t.fails+1
		}
		if unstarted[c.ID] {
			t.decided = false
		}
		switch d.decideRestart(c, t, time.Now()) {
		case restartNow:
			gone = append(gone, c)
		case restartLater:
			d.scheduleRestart(r, c, t)
		}
	}
	for id, t := range rs.byID {
		if !seen[id] {
			t.stop()
			delete(rs.byID, id)
		}
	}
	if len(gone) > 0 {
		rs.wg.Go(func() { d.restartInOrder(rs.ctx, r, restartOrder(gone)) })
	}
	d.publishRestarts()
}

type restartWhen int

const (
	restartNever restartWhen = iota
	restartNow               // with the others whose task is gone, in order
	restartLater             // after t.last.Delay
)

// decideRestart decides once per ended run of c. A task gone with
// containerd comes back at once, unless starting it failed already: it is
// then retried with the backoff, not in a tight loop.
func (d *Daemon) decideRestart(c engine.Container, t *restartTrack, now time.Time) restartWhen {
	exit, ended := exitOf(c, now)
	if !ended || (t.decided && t.run.Equal(c.StartedAt) && (exit.TaskGone || !t.byGone)) {
		return restartNever
	}
	t.run, t.decided = c.StartedAt, true
	t.hist.Count = c.RestartCount + t.fails
	t.last = Decide(c.Restart, exit, t.hist, now)
	t.byGone = exit.TaskGone && !t.last.Restart
	if !t.last.Restart {
		return restartNever
	}
	t.hist = t.last.Next
	if exit.TaskGone && t.fails > 0 {
		t.last.Delay = t.hist.Delay
	}
	d.log.Info("daemon: restarting container", "container", c.Name, "reason", t.last.Reason, "in", t.last.Delay, "restarts", t.hist.Count)
	if exit.TaskGone && t.fails == 0 {
		return restartNow
	}
	return restartLater
}

// track returns c's record, starting over when the user started the
// container again (its restart count went down).
func (rs *restartRunners) track(c engine.Container) *restartTrack {
	t, ok := rs.byID[c.ID]
	if !ok {
		t = &restartTrack{}
		rs.byID[c.ID] = t
	}
	if c.RestartCount < t.seen {
		t.hist, t.fails = History{}, 0
	}
	t.name, t.policy, t.seen = c.Name, c.Restart.Name, c.RestartCount
	return t
}

// exitOf says how c's last run ended, if it has: an exited task, or a
// container that ran and has no task any more.
func exitOf(c engine.Container, now time.Time) (Exit, bool) {
	switch c.Status {
	case engine.StatusExited:
		end := c.FinishedAt
		if end.IsZero() || end.Before(c.StartedAt) {
			end = now
		}
		return Exit{Code: c.ExitCode, Ran: end.Sub(c.StartedAt), UserStopped: c.UserStopped}, true
	case engine.StatusCreated:
		if c.StartedAt.IsZero() {
			return Exit{}, false // never started
		}
		return Exit{TaskGone: true, UserStopped: c.UserStopped}, true
	}
	return Exit{}, false
}

// scheduleRestart restarts c after the decided delay, in a goroutine of its
// own that the container's removal or the daemon's end cancels.
func (d *Daemon) scheduleRestart(r Restarter, c engine.Container, t *restartTrack) {
	t.stop()
	ctx, cancel := context.WithCancel(d.restarts.ctx)
	delay := t.last.Delay
	t.cancel, t.due = cancel, time.Now().Add(delay)
	d.restarts.wg.Go(func() {
		defer cancel()
		d.restart(ctx, r, c, delay)
	})
}

// restartInOrder starts the containers one after the other: each after
// the ones it depends on, and after those it depends on with
// service_healthy are healthy (or unhealthy, or not so within
// healthyWait: the dependent then starts anyway, the host is coming back).
func (d *Daemon) restartInOrder(ctx context.Context, r Restarter, cs []engine.Container) {
	for i, c := range cs {
		if ctx.Err() != nil {
			return
		}
		d.waitHealthy(ctx, healthyDeps(c, cs[:i]))
		d.restart(ctx, r, c, 0)
	}
}

// healthyWait bounds the wait for a service_healthy dependency.
var healthyWait = 2 * time.Minute

// healthyDeps are the containers of before that c depends on with
// service_healthy.
func healthyDeps(c engine.Container, before []engine.Container) []engine.Container {
	var out []engine.Container
	deps := dependencies(c)
	for _, o := range before {
		if o.Project == c.Project && deps[o.Service] == "service_healthy" {
			out = append(out, o)
		}
	}
	return out
}

// waitHealthy observes until each of cs runs healthy, has no healthcheck,
// is unhealthy or stopped, or healthyWait passes.
func (d *Daemon) waitHealthy(ctx context.Context, cs []engine.Container) {
	if len(cs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, healthyWait)
	defer cancel()
	for {
		st, err := d.cfg.Source.Observe(ctx, cs[0].Project)
		if err == nil && settled(st, cs) {
			return
		}
		if !sleep(ctx, 100*time.Millisecond) {
			d.log.Warn("daemon: a dependency is not healthy; starting its dependents anyway", "container", cs[0].Name)
			return
		}
	}
}

// settled reports whether no container of cs is still starting.
func settled(st engine.State, cs []engine.Container) bool {
	for _, c := range cs {
		for _, o := range st.Containers {
			if o.ID == c.ID && o.Status == engine.StatusRunning && o.Health == "starting" {
				return false
			}
		}
	}
	return true
}

// restart starts c again after delay; a failure is retried by the next
// refresh, with the next backoff.
func (d *Daemon) restart(ctx context.Context, r Restarter, c engine.Container, delay time.Duration) {
	started, err := r.AutoRestart(ctx, c.ID, delay)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		d.log.Warn("daemon: restart failed; retrying with the next backoff", "container", c.Name, "err", err)
		d.mu.Lock()
		if d.restarts.errs == nil {
			d.restarts.errs = map[string]string{}
		}
		d.restarts.errs[c.ID] = err.Error()
		d.mu.Unlock()
		d.changed(time.Now())
		return
	}
	if !started {
		d.mu.Lock()
		if d.restarts.unstarted == nil {
			d.restarts.unstarted = map[string]bool{}
		}
		d.restarts.unstarted[c.ID] = true
		d.mu.Unlock()
		return
	}
	d.log.Debug("daemon: restarted", "container", c.Name)
	// The run record gets the new start only after the task started: a
	// run that ends at once may have been observed with the previous
	// run's start, whose end is already decided. A refresh from now on
	// sees the two together.
	d.changed(time.Now())
}

// takeRestartOutcomes returns, and forgets, the restarts that failed and
// those that found nothing to start since the last refresh.
func (d *Daemon) takeRestartOutcomes() (failed map[string]string, unstarted map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	failed, unstarted = d.restarts.errs, d.restarts.unstarted
	d.restarts.errs, d.restarts.unstarted = nil, nil
	return failed, unstarted
}

func (t *restartTrack) stop() {
	if t.cancel != nil {
		t.cancel()
		t.cancel = nil
	}
}

// stopRestarts cancels every scheduled restart and waits for them.
func (d *Daemon) stopRestarts() {
	if d.restarts.cancel != nil {
		d.restarts.cancel()
	}
	d.restarts.wg.Wait()
}

// restartOrder sorts containers so that each comes after the containers of
// the services it depends on (com.docker.compose.depends_on, within its
// project), by name otherwise; a cycle is broken by name.
func restartOrder(cs []engine.Container) []engine.Container {
	sorted := append([]engine.Container(nil), cs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var out []engine.Container
	done := make([]bool, len(sorted))
	for len(out) < len(sorted) {
		progress := false
		for i, c := range sorted {
			if !done[i] && !waitsFor(c, sorted, done) {
				out, done[i], progress = append(out, c), true, true
			}
		}
		if !progress { // a cycle: take the first left
			for i, c := range sorted {
				if !done[i] {
					out, done[i] = append(out, c), true
					break
				}
			}
		}
	}
	return out
}

// waitsFor reports whether c depends on a container of cs not yet done.
func waitsFor(c engine.Container, cs []engine.Container, done []bool) bool {
	deps := dependencies(c)
	for i, o := range cs {
		if _, dep := deps[o.Service]; dep && !done[i] && o.ID != c.ID && o.Project == c.Project {
			return true
		}
	}
	return false
}

// dependencies are the services of c's depends_on label
// ("svc:condition:restart,..."), with their condition.
func dependencies(c engine.Container) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(c.Labels[engine.LabelDependsOn], ",") {
		svc, rest, _ := strings.Cut(part, ":")
		cond, _, _ := strings.Cut(rest, ":")
		if svc != "" {
			out[svc] = cond
		}
	}
	return out
}

// publishRestarts copies, for status, what the daemon knows of each
// container with a restart policy.
func (d *Daemon) publishRestarts() {
	var out []RestartStatus
	for _, t := range d.restarts.byID {
		if t.policy == "" || t.policy == "no" {
			continue
		}
		rs := RestartStatus{Container: t.name, Policy: t.policy, Count: t.seen, Last: t.last.Reason}
		if t.cancel != nil && time.Now().Before(t.due) {
			rs.Next = t.due
		}
		out = append(out, rs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Container < out[j].Container })
	d.mu.Lock()
	d.restartStatus = out
	d.mu.Unlock()
}
