package daemon

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func policy(name string, max int) engine.RestartPolicy {
	return engine.RestartPolicy{Name: name, MaxAttempts: max}
}

// The restart policies, read as a specification: which exit restarts, after
// how long, and what is remembered.
func TestDecideRestartsAsThePolicySays(t *testing.T) {
	crash := Exit{Code: 1, Ran: 300 * time.Millisecond}
	clean := Exit{Code: 0, Ran: 300 * time.Millisecond}
	gone := Exit{TaskGone: true}
	cases := []struct {
		name    string
		policy  engine.RestartPolicy
		exit    Exit
		hist    History
		restart bool
		delay   time.Duration
		reason  string
	}{
		{"no never restarts", policy("no", 0), crash, History{}, false, 0, "restart: no"},
		{"an empty policy is no", policy("", 0), crash, History{}, false, 0, "restart: no"},
		{"always restarts a crash after 100ms", policy("always", 0), crash, History{}, true, 100 * time.Millisecond, "always: exited 1"},
		{"always restarts a clean exit", policy("always", 0), clean, History{}, true, 100 * time.Millisecond, "always: exited 0"},
		{"unless-stopped restarts a crash", policy("unless-stopped", 0), crash, History{}, true, 100 * time.Millisecond, "unless-stopped: exited 1"},
		{"on-failure restarts a crash", policy("on-failure", 0), crash, History{}, true, 100 * time.Millisecond, "on-failure: exited 1"},
		{"on-failure leaves a clean exit", policy("on-failure", 0), clean, History{}, false, 0, "on-failure: exited 0"},
		{"on-failure:3 restarts the third time", policy("on-failure", 3), crash, History{Count: 2, Delay: 200 * time.Millisecond}, true, 400 * time.Millisecond, "on-failure: exited 1"},
		{"on-failure:3 gives up after three", policy("on-failure", 3), crash, History{Count: 3, Delay: 400 * time.Millisecond}, false, 0, "gave up after 3 restarts"},
		{"on-failure without a count never gives up", policy("on-failure", 0), crash, History{Count: 1000, Delay: time.Minute}, true, time.Minute, "on-failure: exited 1"},
		{"the user's stop wins over always", policy("always", 0), Exit{Code: 137, UserStopped: true}, History{}, false, 0, "stopped by the user"},
		{"the user's stop wins over unless-stopped", policy("unless-stopped", 0), Exit{Code: 0, UserStopped: true}, History{}, false, 0, "stopped by the user"},
		{"the user's stop wins over on-failure", policy("on-failure", 0), Exit{Code: 137, UserStopped: true}, History{}, false, 0, "stopped by the user"},
		{"reboot: always comes back at once", policy("always", 0), gone, History{}, true, 0, "always: the task is gone"},
		{"reboot: unless-stopped comes back at once", policy("unless-stopped", 0), gone, History{Delay: time.Second}, true, 0, "unless-stopped: the task is gone"},
		{"reboot: on-failure does not come back", policy("on-failure", 0), gone, History{}, false, 0, "on-failure: the task is gone, its exit code unknown"},
		{"reboot: no does not come back", policy("no", 0), gone, History{}, false, 0, "restart: no"},
		{"reboot: a user-stopped always stays stopped", policy("always", 0), Exit{TaskGone: true, UserStopped: true}, History{}, false, 0, "stopped by the user"},
		{"an unknown policy does not restart", policy("sometimes", 0), crash, History{}, false, 0, `unknown restart policy "sometimes"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Decide(c.policy, c.exit, c.hist, t0)
			if got.Restart != c.restart || got.Delay != c.delay || got.Reason != c.reason {
				t.Errorf("Decide = restart %v after %s (%q), want %v after %s (%q)", got.Restart, got.Delay, got.Reason, c.restart, c.delay, c.reason)
			}
			if !got.Restart && !slices.Equal(got.Next.Recent, c.hist.Recent) || !got.Restart && got.Next.Count != c.hist.Count {
				t.Errorf("a refusal changed the history: %+v -> %+v", c.hist, got.Next)
			}
			if got.Restart && got.Next.Count != c.hist.Count+1 {
				t.Errorf("restart count %d -> %d, want one more", c.hist.Count, got.Next.Count)
			}
		})
	}
}

// Docker's backoff: 100 ms, doubling on each quick crash, capped at a
// minute; a run of 10 s or more starts over at 100 ms.
func TestDecideBacksOffExponentiallyAndResetsAfterTenSecondsOfRunning(t *testing.T) {
	p := policy("always", 0)
	var h History
	var delays []time.Duration
	for range 12 {
		d := Decide(p, Exit{Code: 1, Ran: time.Second}, h, t0)
		delays = append(delays, d.Delay)
		h = d.Next
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(delays, want) {
		t.Errorf("delays = %v, want %v", delays, want)
	}
	if d := Decide(p, Exit{Code: 1, Ran: 10 * time.Second}, h, t0); d.Delay != 100*time.Millisecond {
		t.Errorf("after a 10s run the delay is %s, want 100ms", d.Delay)
	}
	if d := Decide(p, Exit{Code: 1, Ran: 9 * time.Second}, h, t0); d.Delay != time.Minute {
		t.Errorf("after a 9s run the delay is %s, want the capped minute", d.Delay)
	}
}

// deploy.restart_policy: delay replaces the backoff, max_attempts applies
// to any condition and, with a window, counts only the restarts within it.
func TestDecideHonoursDeployDelayMaxAttemptsAndWindow(t *testing.T) {
	p := engine.RestartPolicy{Name: "always", MaxAttempts: 2, Delay: 3 * time.Second, Window: time.Minute}
	crash := Exit{Code: 1, Ran: time.Second}
	var h History
	now := t0
	for i := range 2 {
		d := Decide(p, crash, h, now)
		if !d.Restart || d.Delay != 3*time.Second {
			t.Fatalf("restart %d: %+v, want one after the fixed 3s delay", i+1, d)
		}
		h, now = d.Next, now.Add(5*time.Second)
	}
	if d := Decide(p, crash, h, now); d.Restart || d.Reason != "gave up after 2 restarts" {
		t.Errorf("third restart within the window: %+v, want refused", d)
	}
	later := t0.Add(2 * time.Minute)
	if d := Decide(p, crash, h, later); !d.Restart || len(d.Next.Recent) != 1 {
		t.Errorf("once the window passed: %+v, want a restart counting one in the window", d)
	}
	noWindow := engine.RestartPolicy{Name: "on-failure", MaxAttempts: 2}
	if d := Decide(noWindow, crash, History{Count: 2}, later); d.Restart {
		t.Errorf("without a window every restart counts: %+v", d)
	}
}

func ctr(name, project, service, deps string) engine.Container {
	c := engine.Container{ID: name + "-id", Name: name, Project: project, Service: service, Labels: map[string]string{}}
	if deps != "" {
		c.Labels[engine.LabelDependsOn] = deps
	}
	return c
}

func containerNames(cs []engine.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// After a reboot, containers come back after the ones they depend on: in
// rounds, each starting (by name) the containers whose dependencies are up;
// a cycle is broken last, by name.
func TestRestartOrderFollowsDependsOn(t *testing.T) {
	cs := []engine.Container{
		ctr("p-web-1", "p", "web", "api:service_started:false,cache:service_healthy:true"),
		ctr("p-api-1", "p", "api", "db:service_healthy:false"),
		ctr("p-api-2", "p", "api", "db:service_healthy:false"),
		ctr("p-db-1", "p", "db", ""),
		ctr("p-cache-1", "p", "cache", ""),
		ctr("q-web-1", "q", "web", "db:service_started:false"), // q's db is not restarting
		ctr("a-x-1", "a", "x", "y:service_started:false"),
		ctr("a-y-1", "a", "y", "x:service_started:false"), // a cycle
	}
	got := containerNames(restartOrder(cs))
	want := []string{"p-cache-1", "p-db-1", "q-web-1", "p-api-1", "p-api-2", "p-web-1", "a-x-1", "a-y-1"}
	if !slices.Equal(got, want) {
		t.Errorf("order = %v\nwant    %v", got, want)
	}
}

// restartSource is a fake engine whose AutoRestart starts the container
// again in the observed state, as engine/ctrd does.
type restartSource struct {
	*fakeSource
	mu       sync.Mutex
	restarts map[string][]time.Time
	order    []string
	failures int // the next AutoRestarts that fail
	// running holds containers whose task in fact runs: their
	// AutoRestart finds nothing to start, as engine/ctrd's does.
	running map[string]bool
	// health, when set, is the health of a container just started.
	health map[string]string
}

func (r *restartSource) AutoRestart(ctx context.Context, id string, delay time.Duration) (bool, error) {
	if !sleep(ctx, delay) {
		return false, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.restarts[id] = append(r.restarts[id], time.Now())
	r.order = append(r.order, id)
	if r.failures > 0 {
		r.failures--
		return false, errors.New("cni: no address left")
	}
	if r.running[id] {
		return false, nil
	}
	started := false
	r.update(id, func(c *engine.Container) {
		if !c.UserStopped {
			c.Status, c.StartedAt, c.RestartCount = engine.StatusRunning, time.Now(), c.RestartCount+1
			c.Health = r.health[c.ID]
			started = true
		}
	})
	return started, nil
}

// update changes container id in a copy of the state: the daemon may still
// read the one it observed.
func (r *restartSource) update(id string, change func(*engine.Container)) {
	r.fakeSource.mu.Lock()
	defer r.fakeSource.mu.Unlock()
	cs := slices.Clone(r.st.Containers)
	for i := range cs {
		if cs[i].ID == id {
			change(&cs[i])
		}
	}
	r.st.Containers = cs
}

func (r *restartSource) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.restarts[id])
}

// exit makes container id's task exit with code, as the engine would tell.
func (r *restartSource) exit(id string, code int, userStopped bool) {
	r.update(id, func(c *engine.Container) {
		c.Status, c.ExitCode, c.FinishedAt, c.UserStopped = engine.StatusExited, code, time.Now(), userStopped
	})
	r.events <- engine.Event{Topic: engine.TopicTaskExit, ContainerID: id}
}

// The daemon restarts on the exit event with the backoff, counts, stops at
// on-failure's limit and never restarts what the user stopped.
func TestDaemonRestartsOnExitWithBackoffButNotAUserStop(t *testing.T) {
	crasher := engine.Container{ID: "c", Name: "p-crash-1", Status: engine.StatusRunning, StartedAt: time.Now(), Restart: policy("on-failure", 2)}
	always := engine.Container{ID: "a", Name: "p-always-1", Status: engine.StatusRunning, StartedAt: time.Now(), Restart: policy("always", 0)}
	src := &restartSource{fakeSource: newFakeSource(engine.State{Containers: []engine.Container{crasher, always}}), restarts: map[string][]time.Time{}}
	d := startDaemon(t, src, Config{})
	exited := time.Now()
	src.exit("c", 1, false)
	waitFor(t, 2*time.Second, func() bool { return src.count("c") == 1 })
	if took := time.Since(exited); took < 100*time.Millisecond {
		t.Errorf("first restart after %s, want the 100ms backoff", took)
	}
	exited = time.Now()
	src.exit("c", 1, false)
	waitFor(t, 2*time.Second, func() bool { return src.count("c") == 2 })
	if took := time.Since(exited); took < 200*time.Millisecond {
		t.Errorf("second restart after %s, want the 200ms backoff", took)
	}
	src.exit("c", 1, false)
	src.exit("a", 137, true)
	time.Sleep(500 * time.Millisecond)
	if n, m := src.count("c"), src.count("a"); n != 2 || m != 0 {
		t.Errorf("restarts: on-failure:2 %d times (want 2), user-stopped always %d times (want 0)", n, m)
	}
	st := d.Status()
	if len(st.Restarts) != 2 || st.Restarts[1].Container != "p-crash-1" || st.Restarts[1].Count != 2 || st.Restarts[1].Last != "gave up after 2 restarts" {
		t.Errorf("status restarts = %+v", st.Restarts)
	}
}

// When the daemon starts and the tasks are gone (containerd restarted),
// always and unless-stopped containers come back in dependency order;
// on-failure, no and user-stopped ones do not.
func TestDaemonBringsBackGoneTasksInDependencyOrder(t *testing.T) {
	ran := time.Now().Add(-time.Hour)
	gone := func(name, service, deps, pol string, userStopped bool) engine.Container {
		c := ctr(name, "p", service, deps)
		c.Status, c.StartedAt, c.Restart, c.UserStopped = engine.StatusCreated, ran, policy(pol, 0), userStopped
		return c
	}
	st := engine.State{Containers: []engine.Container{
		gone("p-web-1", "web", "api:service_started:false", "always", false),
		gone("p-api-1", "api", "db:service_started:false", "unless-stopped", false),
		gone("p-db-1", "db", "", "always", false),
		gone("p-job-1", "job", "", "on-failure", false),
		gone("p-tool-1", "tool", "", "no", false),
		gone("p-off-1", "off", "", "always", true),
	}}
	never := ctr("p-new-1", "p", "new", "")
	never.Status, never.Restart = engine.StatusCreated, policy("always", 0)
	st.Containers = append(st.Containers, never)
	src := &restartSource{fakeSource: newFakeSource(st), restarts: map[string][]time.Time{}}
	startDaemon(t, src, Config{})
	waitFor(t, 2*time.Second, func() bool { return src.count("p-web-1-id") == 1 })
	time.Sleep(200 * time.Millisecond)
	src.mu.Lock()
	defer src.mu.Unlock()
	if want := []string{"p-db-1-id", "p-api-1-id", "p-web-1-id"}; !slices.Equal(src.order, want) {
		t.Errorf("restarted %v, want %v", src.order, want)
	}
}

// A restart that fails to start is tried again with the next backoff, and
// counts as an attempt.
func TestDaemonRetriesAFailedRestartWithTheNextBackoff(t *testing.T) {
	c := engine.Container{ID: "c", Name: "p-crash-1", Status: engine.StatusRunning, StartedAt: time.Now(), Restart: policy("on-failure", 3)}
	src := &restartSource{fakeSource: newFakeSource(engine.State{Containers: []engine.Container{c}}), restarts: map[string][]time.Time{}, failures: 2}
	startDaemon(t, src, Config{})
	exited := time.Now()
	src.exit("c", 1, false)
	waitFor(t, 3*time.Second, func() bool { return src.count("c") == 3 })
	src.mu.Lock()
	times := slices.Clone(src.restarts["c"])
	src.mu.Unlock()
	gaps := []time.Duration{times[0].Sub(exited), times[1].Sub(times[0]), times[2].Sub(times[1])}
	for i, want := range []time.Duration{100, 200, 400} {
		if gaps[i] < want*time.Millisecond {
			t.Errorf("attempt %d after %s, want the %dms backoff", i+1, gaps[i], want)
		}
	}
	src.exit("c", 1, false)
	time.Sleep(300 * time.Millisecond)
	if n := src.count("c"); n != 3 {
		t.Errorf("%d attempts, want 3: the failed ones count against on-failure:3", n)
	}
}

// After a reboot, a service_healthy dependent starts once its dependency is
// healthy, not merely started.
func TestDaemonBringsBackAServiceHealthyDependentOnceItsDependencyIsHealthy(t *testing.T) {
	ran := time.Now().Add(-time.Hour)
	db := ctr("p-db-1", "p", "db", "")
	api := ctr("p-api-1", "p", "api", "db:service_healthy:false")
	web := ctr("p-web-1", "p", "web", "api:service_started:false")
	for _, c := range []*engine.Container{&db, &api, &web} {
		c.Status, c.StartedAt, c.Restart = engine.StatusCreated, ran, policy("always", 0)
	}
	src := &restartSource{
		fakeSource: newFakeSource(engine.State{Containers: []engine.Container{db, api, web}}),
		restarts:   map[string][]time.Time{},
		health:     map[string]string{db.ID: "starting", api.ID: "starting"},
	}
	startDaemon(t, src, Config{})
	waitFor(t, 2*time.Second, func() bool { return src.count(db.ID) == 1 })
	time.Sleep(300 * time.Millisecond)
	if n := src.count(api.ID); n != 0 {
		t.Fatalf("api restarted while db is still starting")
	}
	healthy := time.Now()
	src.update(db.ID, func(c *engine.Container) { c.Health = "healthy" })
	waitFor(t, 2*time.Second, func() bool { return src.count(web.ID) == 1 })
	src.mu.Lock()
	defer src.mu.Unlock()
	if at := src.restarts[api.ID][0]; at.Before(healthy) {
		t.Errorf("api restarted %s before db was healthy", healthy.Sub(at))
	}
	if web := src.restarts[web.ID][0]; web.Before(src.restarts[api.ID][0]) {
		t.Errorf("web (service_started on api) restarted before api")
	}
}

// A task gone with containerd comes back at once; if starting it fails, it
// is retried with the backoff, not in a tight loop.
func TestDaemonRetriesAGoneTaskWithTheBackoff(t *testing.T) {
	c := ctr("p-db-1", "p", "db", "")
	c.Status, c.StartedAt, c.Restart = engine.StatusCreated, time.Now().Add(-time.Hour), policy("always", 0)
	src := &restartSource{fakeSource: newFakeSource(engine.State{Containers: []engine.Container{c}}), restarts: map[string][]time.Time{}, failures: 2}
	startDaemon(t, src, Config{})
	waitFor(t, 3*time.Second, func() bool { return src.count(c.ID) == 3 })
	src.mu.Lock()
	times := slices.Clone(src.restarts[c.ID])
	src.mu.Unlock()
	for i, want := range []time.Duration{100, 200} {
		if gap := times[i+1].Sub(times[i]); gap < want*time.Millisecond {
			t.Errorf("retry %d after %s, want the %dms backoff", i+1, gap, want)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := src.count(c.ID); n != 3 {
		t.Errorf("%d attempts, want 3 (the last one started it)", n)
	}
}

// A run first observed with its task gone (a start seen half-way: the task
// list taken before the task was created, the run record read after it
// started) is decided again when the same run then shows its exit: the
// on-failure container is restarted, not left for a task "lost with
// containerd".
func TestDaemonDecidesAnExitAfterARunWronglySeenWithItsTaskGone(t *testing.T) {
	started := time.Now()
	c := engine.Container{ID: "c", Name: "p-fixed-1", Status: engine.StatusCreated, StartedAt: started, Restart: policy("on-failure", 2)}
	src := &restartSource{fakeSource: newFakeSource(engine.State{Containers: []engine.Container{c}}), restarts: map[string][]time.Time{}}
	d := startDaemon(t, src, Config{})
	waitFor(t, 2*time.Second, func() bool {
		rs := d.Status().Restarts
		return len(rs) == 1 && strings.Contains(rs[0].Last, "task is gone")
	})
	src.update("c", func(c *engine.Container) { c.Status = engine.StatusRunning })
	src.exit("c", 4, false)
	waitFor(t, 2*time.Second, func() bool { return src.count("c") == 1 })
	time.Sleep(300 * time.Millisecond)
	if n := src.count("c"); n != 1 {
		t.Errorf("%d restarts of one exit, want 1", n)
	}
}

// An always container wrongly seen with its task gone is restarted at
// once; the restart finds its task running and starts nothing. When that
// same run then exits, the exit is decided, and the container restarted.
func TestDaemonDecidesAgainWhenARestartFoundNothingToStart(t *testing.T) {
	c := engine.Container{ID: "a", Name: "p-web-1", Status: engine.StatusCreated, StartedAt: time.Now(), Restart: policy("always", 0)}
	src := &restartSource{fakeSource: newFakeSource(engine.State{Containers: []engine.Container{c}}), restarts: map[string][]time.Time{}, running: map[string]bool{"a": true}}
	startDaemon(t, src, Config{})
	waitFor(t, 2*time.Second, func() bool { return src.count("a") == 1 })
	src.mu.Lock()
	src.running["a"] = false
	src.mu.Unlock()
	src.update("a", func(c *engine.Container) { c.Status = engine.StatusRunning })
	src.exit("a", 137, false)
	waitFor(t, 2*time.Second, func() bool { return src.count("a") == 2 })
	var status engine.Status
	src.fakeSource.mu.Lock()
	status = src.st.Containers[0].Status
	src.fakeSource.mu.Unlock()
	if status != engine.StatusRunning {
		t.Errorf("after the exit: %s, want running again", status)
	}
}
