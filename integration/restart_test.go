package integration

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

// A run of a container as the test saw it: from its start to its exit.
type seenRun struct {
	started, finished time.Time
}

// watchRuns polls the containers named in want (through one client,
// lightly, not to slow what it measures) until each was restarted its
// wanted number of times and has exited since, or limit passes, and
// returns the runs seen, in order.
func (p *projectEnv) watchRuns(want map[string]int, limit time.Duration) map[string][]seenRun {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	c, err := ctrd.New(ctx, ctrd.Options{Address: env.socket, Namespace: p.namespace, StateDir: p.stateDir})
	if err != nil {
		p.t.Fatal(err)
	}
	defer c.Close()
	runs := map[string][]seenRun{}
	for ctx.Err() == nil {
		st, err := c.Observe(ctx, p.project)
		if err != nil {
			break
		}
		done := true
		for _, ctr := range st.Containers {
			if n, ok := want[ctr.Name]; ok {
				runs[ctr.Name] = addRun(runs[ctr.Name], ctr)
				done = done && ctr.RestartCount >= n && ctr.Status == engine.StatusExited
			}
		}
		if done {
			return runs
		}
		time.Sleep(25 * time.Millisecond)
	}
	p.t.Fatalf("runs seen within %s: %+v, want %v restarts", limit, runs, want)
	return nil
}

func addRun(runs []seenRun, c engine.Container) []seenRun {
	if len(runs) == 0 || !runs[len(runs)-1].started.Equal(c.StartedAt) {
		runs = append(runs, seenRun{started: c.StartedAt})
	}
	if c.Status == engine.StatusExited && runs[len(runs)-1].finished.IsZero() {
		runs[len(runs)-1].finished = c.FinishedAt
	}
	return runs
}

// waitStatus polls until the container called name has status and, when
// after is set, a run started after it.
func (p *projectEnv) waitStatus(name string, status engine.Status, after time.Time, limit time.Duration) engine.Container {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	var c engine.Container
	for time.Now().Before(deadline) {
		c = p.containerNamed(name)
		if c.Status == status && (after.IsZero() || c.StartedAt.After(after)) {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("%s: status %s (started %s), want %s started after %s, within %s", name, c.Status, c.StartedAt, status, after, limit)
	return c
}

// staysDown checks that the container called name is not started again
// for a while: longer than the backoff it would have had.
func (p *projectEnv) staysDown(name string, wait time.Duration) {
	p.t.Helper()
	before := p.containerNamed(name)
	time.Sleep(wait)
	c := p.containerNamed(name)
	if c.Status == engine.StatusRunning || !c.StartedAt.Equal(before.StartedAt) {
		p.t.Errorf("%s was started again: status %s, started %s (before %s)", name, c.Status, c.StartedAt, before.StartedAt)
	}
}

// leases lists the host-local address leases of the project's networks.
func (p *projectEnv) leases() []string {
	p.t.Helper()
	files, _ := filepath.Glob(filepath.Join(p.stateDir, "networks", "ipam", "*", "*"))
	var out []string
	for _, f := range files {
		if _, err := netip.ParseAddr(filepath.Base(f)); err == nil {
			out = append(out, filepath.Base(f))
		}
	}
	return out
}

// veths counts the interfaces attached to network's bridge.
func (p *projectEnv) veths(network string) int {
	p.t.Helper()
	for _, n := range p.observe().Networks {
		if n.Name == network {
			out, err := exec.Command("ip", "-o", "link", "show", "master", n.Bridge).Output()
			if err != nil {
				p.t.Fatalf("ip link show master %s: %v", n.Bridge, err)
			}
			return strings.Count(string(out), "\n")
		}
	}
	p.t.Fatalf("network %s not observed", network)
	return 0
}

// killDaemon kills the test's daemon with SIGKILL, as a crash would.
func (e *dnsEnv) killDaemon() {
	e.t.Helper()
	pid := e.status().PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		e.t.Fatal(err)
	}
	waitGone(pid, 5*time.Second)
}

const crashing = `
services:
  crash:
    image: busybox
    command: ["sh", "-c", "sleep 0.3; exit 1"]
    restart: on-failure:3
  loop:
    image: busybox
    command: ["sh", "-c", "sleep 0.3; exit 2"]
    restart: on-failure:5
  fixed:
    image: busybox
    command: ["sh", "-c", "sleep 0.3; exit 4"]
    deploy:
      restart_policy:
        condition: on-failure
        delay: 1s
        max_attempts: 2
`

// on-failure:3 restarts a crashing container exactly three times, then
// leaves it exited and says so in the daemon's status. Each restart waits
// twice the previous backoff after the exit: 100, 200, 400, 800, 1600 ms
// (plus the start's own time, which a loaded host makes vary); a
// deploy.restart_policy delay replaces the backoff.
func TestRestartOnFailureExactlyNTimesWithAGrowingBackoff(t *testing.T) {
	e := newDNSEnv(t, crashing)
	e.mustRun("up", "-d")
	crash, loop := e.name("crash", 1), e.name("loop", 1)
	fixed := e.name("fixed", 1)
	runs := e.watchRuns(map[string]int{crash: 3, loop: 5, fixed: 2}, 30*time.Second)
	e.staysDown(crash, 1500*time.Millisecond)
	for name, n := range map[string]int{crash: 3, loop: 5, fixed: 2} {
		c := e.containerNamed(name)
		if c.RestartCount != n || c.Status != engine.StatusExited {
			t.Errorf("%s: restart count %d, status %s; want %d restarts, exited", name, c.RestartCount, c.Status, n)
		}
	}
	gaps := exitToRestart(runs[loop])
	t.Logf("exit-to-restart intervals: %v", gaps)
	if len(gaps) != 5 {
		t.Fatalf("loop: %d restarts seen, want 5 (a run went unseen between two polls?): %+v", len(gaps), runs[loop])
	}
	for i, backoff := range []time.Duration{100, 200, 400, 800, 1600} {
		if gaps[i] < backoff*time.Millisecond {
			t.Errorf("restart %d came %s after the exit, before its %dms backoff", i+1, gaps[i], backoff)
		}
	}
	// The start itself takes 0.3 to 2 s on a loaded host (and the first
	// restarts of the three services contend): the last backoff (1.6 s) is
	// compared with the quickest of the first three (0.1 to 0.4 s).
	if gaps[4] <= min(gaps[0], gaps[1], gaps[2]) {
		t.Errorf("the backoff did not grow: %v", gaps)
	}
	// deploy.restart_policy: the delay replaces the backoff.
	for i, gap := range exitToRestart(runs[fixed]) {
		if gap < time.Second {
			t.Errorf("fixed: restart %d came %s after the exit, before its 1s delay", i+1, gap)
		}
	}
	if out := e.mustRun("ps", "-a", "crash"); !strings.Contains(out, "Exited (1) (3 restarts)") {
		t.Errorf("ps does not count the restarts:\n%s", out)
	}
	var got string
	for _, r := range e.status().Restarts {
		if r.Container == crash {
			got = r.Last
			if r.Count != 3 || r.Policy != "on-failure" {
				t.Errorf("daemon status: %+v", r)
			}
		}
	}
	if got != "gave up after 3 restarts" {
		t.Errorf("daemon status last decision %q, want gave up after 3 restarts", got)
	}
}

func exitToRestart(runs []seenRun) []time.Duration {
	var gaps []time.Duration
	for i := 1; i < len(runs); i++ {
		gaps = append(gaps, runs[i].started.Sub(runs[i-1].finished))
	}
	return gaps
}

const restartAlways = `
services:
  svc:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    restart: always
  crash:
    image: busybox
    command: ["sh", "-c", "sleep 0.5; exit 3"]
    restart: always
  client:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`

// An always container killed from the host comes back, reachable on its
// network, with its old address released; stopped or killed by the user it
// stays stopped, also after the daemon is killed and comes back, while a
// crashing one keeps being restarted. down leaves no netns or lease.
func TestRestartAlwaysComesBackUnlessTheUserStoppedIt(t *testing.T) {
	e := newDNSEnv(t, restartAlways)
	e.mustRun("up", "-d")
	svc, client, crash := e.name("svc", 1), e.name("client", 1), e.name("crash", 1)
	network := e.project + "_default"
	first := e.waitStatus(svc, engine.StatusRunning, time.Time{}, 5*time.Second)
	ids := []string{first.ID, e.containerNamed(client).ID, e.containerNamed(crash).ID}

	t.Run("killed from the host it comes back on its network", func(t *testing.T) {
		if err := syscall.Kill(first.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		again := e.waitStatus(svc, engine.StatusRunning, first.StartedAt, 5*time.Second)
		t.Logf("back %s after kill -9 of its process", again.StartedAt.Sub(killed).Round(time.Millisecond))
		if again.RestartCount != 1 {
			t.Errorf("restart count %d, want 1", again.RestartCount)
		}
		ip := again.Addresses[network]
		if r := e.exec(client, "ping", "-c1", "-W2", ip); r.code != 0 {
			t.Errorf("ping %s (the restarted container) from %s: exit %d %s", ip, client, r.code, r.stderr)
		}
		if r := e.exec(client, "ping", "-c1", "-W2", "svc"); r.code != 0 {
			t.Errorf("ping svc by name: exit %d %s", r.code, r.stderr)
		}
		if _, err := os.Stat("/var/run/netns/stack-" + again.ID[:24]); err != nil {
			t.Errorf("the restarted container has no netns: %v", err)
		}
		// One lease per container: the old run's address was released
		// (the crashing one may be between its DEL and ADD).
		if l := e.leases(); len(l) > 3 {
			t.Errorf("address leases after the restart: %v, want at most one per container", l)
		}
		if v := e.veths(network); v > 3 {
			t.Errorf("%d veths on the bridge after the restart, want at most one per container", v)
		}
		if masq := grepText(grepText(hostRules(t), again.ID), "-A POSTROUTING"); strings.Count(masq, "\n") > 0 {
			t.Errorf("more than one masquerade rule for the restarted container:\n%s", masq)
		}
	})

	t.Run("stack kill keeps it down", func(t *testing.T) {
		e.mustRun("kill", "svc")
		e.waitStatus(svc, engine.StatusExited, time.Time{}, 5*time.Second)
		e.staysDown(svc, time.Second)
	})

	t.Run("stack start clears the stop", func(t *testing.T) {
		before := e.containerNamed(svc)
		e.mustRun("start", "svc")
		c := e.waitStatus(svc, engine.StatusRunning, before.StartedAt, 5*time.Second)
		if c.RestartCount != 0 || c.UserStopped {
			t.Errorf("after start: restart count %d, user stopped %v; want 0, false", c.RestartCount, c.UserStopped)
		}
		if err := syscall.Kill(c.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		e.waitStatus(svc, engine.StatusRunning, c.StartedAt, 5*time.Second)
	})

	t.Run("stack stop keeps it down across a killed daemon", func(t *testing.T) {
		e.mustRun("stop", "-t", "1", "svc")
		if c := e.containerNamed(svc); c.Status != engine.StatusExited || !c.UserStopped {
			t.Fatalf("after stop: %s, user stopped %v", c.Status, c.UserStopped)
		}
		e.staysDown(svc, time.Second)
		e.killDaemon()
		before := e.containerNamed(crash)
		e.mustRun("ps") // brings the daemon back
		e.staysDown(svc, 1500*time.Millisecond)
		e.waitStatus(crash, engine.StatusRunning, before.StartedAt, 10*time.Second)
		if c := e.containerNamed(crash); c.RestartCount < 2 {
			t.Errorf("crash: restart count %d after the daemon came back, want it still counting", c.RestartCount)
		}
	})

	t.Run("stack kill during the backoff keeps a crashing one down", func(t *testing.T) {
		e.waitStatus(crash, engine.StatusExited, time.Time{}, 10*time.Second)
		e.mustRun("kill", "crash")
		if c := e.containerNamed(crash); c.Status == engine.StatusRunning || !c.UserStopped {
			t.Fatalf("after kill: %s, user stopped %v", c.Status, c.UserStopped)
		}
		e.staysDown(crash, time.Second)
	})

	t.Run("stack stop during the backoff keeps a crashing one down", func(t *testing.T) {
		e.mustRun("start", "crash")
		e.waitStatus(crash, engine.StatusExited, time.Time{}, 10*time.Second)
		e.mustRun("stop", "-t", "1", "crash")
		if c := e.containerNamed(crash); c.Status == engine.StatusRunning || !c.UserStopped {
			t.Fatalf("after stop: %s, user stopped %v", c.Status, c.UserStopped)
		}
		e.staysDown(crash, time.Second)
	})

	t.Run("down leaves no netns or lease", func(t *testing.T) {
		e.mustRun("down", "-t", "0")
		for _, id := range ids {
			if _, err := os.Stat("/var/run/netns/stack-" + id[:24]); err == nil {
				t.Errorf("netns of %s left", id[:12])
			}
		}
		if l := e.leases(); len(l) != 0 {
			t.Errorf("address leases left after down: %v", l)
		}
		rules := hostRules(t)
		for _, id := range ids {
			if l := grepText(rules, id); l != "" {
				t.Errorf("iptables rules naming %s left:\n%s", id[:12], l)
			}
		}
	})
}

const rebootProject = `
services:
  db:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    restart: always
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
  api:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    restart: unless-stopped
    depends_on:
      db:
        condition: service_healthy
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    deploy:
      restart_policy:
        condition: any
    depends_on: [api]
  job:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    restart: on-failure
  tool:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
  off:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    restart: always
`

// The reboot case: with the daemon down, every task of the namespace is
// killed and deleted (as a containerd restart leaves them). When the daemon
// comes back, always and unless-stopped containers start again, each after
// what it depends on (once healthy, for service_healthy); on-failure, no
// and user-stopped ones do not.
func TestRestartAfterTheTasksAreGoneBringsBackAlwaysInDependencyOrder(t *testing.T) {
	e := newDNSEnv(t, rebootProject)
	e.mustRun("up", "-d")
	e.mustRun("stop", "-t", "1", "off")
	before := map[string]engine.Container{}
	for _, c := range e.observe().Containers {
		before[c.Service] = c
	}
	e.killDaemon()
	e.deleteAllTasks()
	for _, c := range e.observe().Containers {
		if c.Status == engine.StatusRunning {
			t.Fatalf("%s still runs after its task was deleted", c.Name)
		}
	}
	e.mustRun("ps") // brings the daemon back
	started := map[string]time.Time{}
	for _, svc := range []string{"db", "api", "web"} {
		c := e.waitStatus(e.name(svc, 1), engine.StatusRunning, before[svc].StartedAt, 10*time.Second)
		started[svc] = c.StartedAt
	}
	if !started["db"].Before(started["api"]) || !started["api"].Before(started["web"]) {
		t.Errorf("start order: db %s, api %s, web %s; want db, then api, then web", started["db"], started["api"], started["web"])
	}
	if hs := e.health(e.name("db", 1)); len(hs.Log) == 0 || !hs.StartedAt.Equal(started["db"]) || hs.Log[0].End.After(started["api"]) {
		t.Errorf("api (service_healthy on db) started at %s, before db's first healthy probe: %+v", started["api"], hs)
	}
	t.Logf("back after the daemon started: db +0, api +%s, web +%s",
		started["api"].Sub(started["db"]).Round(time.Millisecond), started["web"].Sub(started["db"]).Round(time.Millisecond))
	time.Sleep(time.Second)
	for _, svc := range []string{"job", "tool", "off"} {
		if c := e.containerNamed(e.name(svc, 1)); c.Status == engine.StatusRunning {
			t.Errorf("%s (%s) came back, want it left down", svc, c.Restart.Name)
		}
	}
	if r := e.exec(e.name("web", 1), "ping", "-c1", "-W2", "db"); r.code != 0 {
		t.Errorf("web cannot reach db after the restart: exit %d %s", r.code, r.stderr)
	}
	e.mustRun("down", "-t", "0")
	if l := e.leases(); len(l) != 0 {
		t.Errorf("address leases left after down: %v", l)
	}
}

// deleteAllTasks kills and deletes every task of the test's namespace
// through containerd, as a containerd or host restart leaves them: gone.
func (p *projectEnv) deleteAllTasks() {
	p.t.Helper()
	c, ctx, done := p.raw()
	defer done()
	list, err := c.Containers(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, ctr := range list {
		task, err := ctr.Task(ctx, nil)
		if err != nil {
			continue
		}
		exited, err := task.Wait(ctx)
		if err != nil {
			p.t.Fatal(err)
		}
		if err := task.Kill(ctx, syscall.SIGKILL); err == nil {
			<-exited
		}
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			p.t.Fatalf("delete task of %s: %v", ctr.ID(), err)
		}
	}
}
