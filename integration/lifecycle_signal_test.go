package integration

import (
	"strings"
	"testing"

	"github.com/stackdev/stack/engine"
)

func (p *projectEnv) container(service string) engine.Container {
	p.t.Helper()
	for _, c := range p.observe().ProjectContainers(p.project) {
		if c.Service == service {
			return c
		}
	}
	p.t.Fatalf("no container for service %s", service)
	return engine.Container{}
}

func TestLifecycleKillSendsTheSignal(t *testing.T) {
	p := newProjectEnv(t, lifecycleChain)
	p.mustRun("up", "-d")

	if r := p.run("kill", "-s", "NOSUCHSIG", "web"); r.code == 0 || !strings.Contains(r.stderr, "NOSUCHSIG") {
		t.Errorf("kill -s NOSUCHSIG: exit %d, stderr %q", r.code, r.stderr)
	}
	wantStatuses(t, p.statuses(), map[string]engine.Status{"web": engine.StatusRunning})

	// The trap exits 0 on TERM; the default SIGKILL gives 128+9.
	r := p.run("kill", "-s", "TERM", "web")
	if r.code != 0 || !strings.Contains(r.stderr, "Container "+p.project+"-web-1  Killed") {
		t.Fatalf("kill -s TERM web: exit %d, stderr %q", r.code, r.stderr)
	}
	waitFor(t, func() bool { return p.container("web").Status == engine.StatusExited })
	if c := p.container("web"); c.ExitCode != 0 {
		t.Errorf("web exit code after TERM = %d, want 0", c.ExitCode)
	}
	p.mustRun("kill", "db")
	waitFor(t, func() bool { return p.container("db").Status == engine.StatusExited })
	if c := p.container("db"); c.ExitCode != 137 {
		t.Errorf("db exit code after SIGKILL = %d, want 137", c.ExitCode)
	}
	wantStatuses(t, p.statuses(), map[string]engine.Status{"api": engine.StatusRunning})

	// A killed container starts again, with its network.
	p.mustRun("start")
	wantStatuses(t, p.statuses(), map[string]engine.Status{"db": engine.StatusRunning, "api": engine.StatusRunning, "web": engine.StatusRunning})
}

func TestLifecyclePauseAndUnpause(t *testing.T) {
	p := newProjectEnv(t, lifecycleChain)
	p.mustRun("up", "-d")
	p.mustRun("pause", "api")
	wantStatuses(t, p.statuses(), map[string]engine.Status{"api": engine.StatusPaused, "db": engine.StatusRunning})
	if out := p.mustRun("ps", "api"); !strings.Contains(out, "(Paused)") {
		t.Errorf("ps does not show api paused:\n%s", out)
	}
	p.mustRun("unpause")
	wantStatuses(t, p.statuses(), map[string]engine.Status{"api": engine.StatusRunning})

	// A paused container stops like a running one.
	p.mustRun("pause", "web")
	p.mustRun("stop", "web")
	wantStatuses(t, p.statuses(), map[string]engine.Status{"web": engine.StatusExited})
}

func TestLifecycleKillRemoveOrphans(t *testing.T) {
	p := newProjectEnv(t, lifecycleChain)
	p.mustRun("up", "-d")
	// web is no longer declared: an orphan.
	p.writeCompose(strings.Replace(lifecycleChain, "  web:\n    <<: *sleeper\n    depends_on: [api]\n", "", 1))
	r := p.run("kill", "--remove-orphans", "db")
	if r.code != 0 {
		t.Fatalf("kill --remove-orphans db: exit %d\n%s", r.code, r.stderr)
	}
	if got := p.services(); got["web"] || !got["db"] || !got["api"] {
		t.Errorf("after kill --remove-orphans: services %v, want db and api", got)
	}
	waitFor(t, func() bool { return p.container("db").Status == engine.StatusExited })
	wantStatuses(t, p.statuses(), map[string]engine.Status{"api": engine.StatusRunning})
}
