package integration

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
)

// lifecycleChain is db ← api (restart: true) ← web (plain depends_on), each
// a busybox that exits at once on SIGTERM.
const lifecycleChain = `
x-sleeper: &sleeper
  image: busybox
  command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
services:
  db:
    <<: *sleeper
  api:
    <<: *sleeper
    depends_on:
      db:
        condition: service_started
        restart: true
  web:
    <<: *sleeper
    depends_on: [api]
`

// statuses maps service → status of its first container.
func (p *projectEnv) statuses() map[string]engine.Status {
	out := map[string]engine.Status{}
	for _, c := range p.observe().ProjectContainers(p.project) {
		out[c.Service] = c.Status
	}
	return out
}

func (p *projectEnv) startedAt() map[string]time.Time {
	out := map[string]time.Time{}
	for _, c := range p.observe().ProjectContainers(p.project) {
		out[c.Service] = c.StartedAt
	}
	return out
}

func wantStatuses(t *testing.T, got map[string]engine.Status, want map[string]engine.Status) {
	t.Helper()
	for svc, w := range want {
		if got[svc] != w {
			t.Errorf("%s is %s, want %s (all: %v)", svc, got[svc], w, got)
		}
	}
}

// wantBefore checks that first occurs in out, before second.
func wantBefore(t *testing.T, out, first, second string) {
	t.Helper()
	i, j := strings.Index(out, first), strings.Index(out, second)
	if i < 0 || j < 0 || i > j {
		t.Errorf("want %q before %q in:\n%s", first, second, out)
	}
}

func TestLifecycleStopThenStartKeepsTheContainers(t *testing.T) {
	p := newProjectEnv(t, lifecycleChain)
	p.mustRun("up", "-d")
	before := p.observe()

	t0 := time.Now()
	r := p.run("stop")
	if r.code != 0 || !strings.Contains(r.stderr, p.project+"-db-1") {
		t.Fatalf("stop: exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("stop:\n%s", r.stderr)
	// Dependents first: web is stopped before api is asked to, api before db.
	wantBefore(t, r.stderr, p.project+"-web-1  Stopped", p.project+"-api-1  Stopping")
	wantBefore(t, r.stderr, p.project+"-api-1  Stopped", p.project+"-db-1  Stopping")
	if d := time.Since(t0); d > 8*time.Second {
		t.Errorf("stop took %v: the containers exit on SIGTERM at once", d)
	}
	wantStatuses(t, p.statuses(), map[string]engine.Status{"db": engine.StatusExited, "api": engine.StatusExited, "web": engine.StatusExited})
	if out := p.mustRun("ps", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("ps after stop lists running containers:\n%s", out)
	}

	r = p.run("start")
	t.Logf("start:\n%s", r.stderr)
	wantBefore(t, r.stderr, p.project+"-db-1  Started", p.project+"-api-1  Starting")
	wantBefore(t, r.stderr, p.project+"-api-1  Started", p.project+"-web-1  Starting")
	after := p.observe()
	wantStatuses(t, p.statuses(), map[string]engine.Status{"db": engine.StatusRunning, "api": engine.StatusRunning, "web": engine.StatusRunning})
	ids := map[string]string{}
	for _, c := range before.Containers {
		ids[c.Name] = c.ID
	}
	for _, c := range after.Containers {
		if ids[c.Name] != c.ID {
			t.Errorf("%s was recreated by stop/start: %s → %s", c.Name, ids[c.Name], c.ID)
		}
	}
	// start on a running project does nothing.
	p.mustRun("start")
}

func TestLifecycleStopOneServiceLeavesTheOthersRunning(t *testing.T) {
	p := newProjectEnv(t, lifecycleChain)
	p.mustRun("up", "-d")
	p.mustRun("stop", "-t", "1", "api")
	wantStatuses(t, p.statuses(), map[string]engine.Status{"db": engine.StatusRunning, "api": engine.StatusExited, "web": engine.StatusRunning})

	// up starts what the user stopped, as compose's up does.
	p.mustRun("up", "-d")
	wantStatuses(t, p.statuses(), map[string]engine.Status{"api": engine.StatusRunning})

	if r := p.run("stop", "nosuch"); r.code == 0 || !strings.Contains(r.stderr, "no such service: nosuch") {
		t.Errorf("stop nosuch: exit %d, stderr %q", r.code, r.stderr)
	}
	wantStatuses(t, p.statuses(), map[string]engine.Status{"db": engine.StatusRunning, "api": engine.StatusRunning, "web": engine.StatusRunning})
}

func TestLifecycleStartNamesAServiceWithoutContainer(t *testing.T) {
	p := newProjectEnv(t, lifecycleChain)
	p.mustRun("up", "-d", "--no-deps", "db")
	r := p.run("start", "web")
	if r.code == 0 || !strings.Contains(r.stderr, "service web has no container to start") {
		t.Errorf("start web without a container: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestLifecycleRestartFollowsRestartTrueDependents(t *testing.T) {
	p := newProjectEnv(t, lifecycleChain)
	p.mustRun("up", "-d")
	before := p.startedAt()

	p.mustRun("restart", "-t", "2", "db")
	after := p.startedAt()
	wantStatuses(t, p.statuses(), map[string]engine.Status{"db": engine.StatusRunning, "api": engine.StatusRunning, "web": engine.StatusRunning})
	if !after["db"].After(before["db"]) || !after["api"].After(before["api"]) {
		t.Errorf("db and api (restart: true) were not restarted: before %v after %v", before, after)
	}
	if !after["web"].Equal(before["web"]) {
		t.Errorf("web (no restart: true edge) was restarted: %v → %v", before["web"], after["web"])
	}

	p.mustRun("restart", "--no-deps", "db")
	again := p.startedAt()
	if !again["db"].After(after["db"]) || !again["api"].Equal(after["api"]) {
		t.Errorf("restart --no-deps db: before %v after %v", after, again)
	}
}

func TestLifecycleStartOfAServiceStartsItsDependencies(t *testing.T) {
	p := newProjectEnv(t, lifecycleChain)
	p.mustRun("up", "-d")
	p.mustRun("stop", "-t", "1")
	p.mustRun("start", "api")
	wantStatuses(t, p.statuses(), map[string]engine.Status{"db": engine.StatusRunning, "api": engine.StatusRunning, "web": engine.StatusExited})
}

const stopSignals = `
services:
  stubborn:
    image: busybox
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
    stop_grace_period: 3s
  usr1:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' USR1; while true; do sleep 1; done"]
    stop_signal: SIGUSR1
`

func TestLifecycleStopHonoursStopSignalAndGracePeriod(t *testing.T) {
	p := newProjectEnv(t, stopSignals)
	p.mustRun("up", "-d")

	t0 := time.Now()
	p.mustRun("stop", "usr1")
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("stop usr1 took %v: its stop_signal SIGUSR1 ends it at once", d)
	}
	if c := p.container("usr1"); c.Status != engine.StatusExited || c.ExitCode != 0 {
		t.Errorf("usr1 after stop: %s exit %d, want exited 0 (it trapped SIGUSR1)", c.Status, c.ExitCode)
	}

	t0 = time.Now()
	p.mustRun("stop", "stubborn")
	d := time.Since(t0)
	if d < 3*time.Second || d > 10*time.Second {
		t.Errorf("stop stubborn took %v, want its 3s stop_grace_period then SIGKILL", d)
	}
	if c := p.container("stubborn"); c.Status != engine.StatusExited || c.ExitCode != 137 {
		t.Errorf("stubborn after stop: %s exit %d, want exited 137 (SIGKILL)", c.Status, c.ExitCode)
	}

	// -t overrides the grace period: -t 0 kills at once.
	p.mustRun("start", "stubborn")
	t0 = time.Now()
	p.mustRun("stop", "-t", "0", "stubborn")
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("stop -t 0 took %v, want a kill without the 3s grace period", d)
	}
}

// hostPIDOrphan's init leaves a child that the host's init adopts when
// init dies, since the container shares the host's PID namespace.
const hostPIDOrphan = `
services:
  orphaner:
    image: busybox
    pid: host
    stop_signal: SIGKILL
    command: ["sh", "-c", "sleep 4711 & exec sleep 3600"]
  own:
    image: busybox
    stop_signal: SIGKILL
    command: ["sh", "-c", "sleep 4712 & exec sleep 3600"]
`

func TestLifecycleStopLeavesNoProcessOfAContainerSharingTheHostPIDNamespace(t *testing.T) {
	p := newProjectEnv(t, hostPIDOrphan)
	p.mustRun("up", "-d")
	running := func(marker string) bool {
		return exec.Command("pgrep", "-f", "^sleep "+marker+"$").Run() == nil
	}
	waitFor(t, func() bool { return running("4711") && running("4712") })

	p.mustRun("stop", "orphaner", "own")
	for _, marker := range []string{"4711", "4712"} {
		if running(marker) {
			t.Errorf("sleep %s outlived its container's stop", marker)
		}
	}
}
