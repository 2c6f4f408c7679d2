package ctrd

import (
	"context"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"
)

// probeTargets keeps, per container, what a healthcheck probe needs from
// containerd (its task and its process spec) for as long as the same task
// runs. The daemon probes every healthchecked container every interval, and
// loading them anew costs two requests and a decode of the OCI spec each
// time; with the cache a probe is the exec alone.
type probeTargets struct {
	mu sync.Mutex
	m  map[string]probeTarget
}

type probeTarget struct {
	started time.Time
	task    containerd.Task
	spec    *oci.Spec
	used    time.Time
	// health is the state last recorded, saved to health.json at saved
	// (hasHealth false until the first probe of this task).
	health    HealthState
	hasHealth bool
	saved     time.Time
}

// probeTargetIdle is how long an unused entry is kept (its container gone).
const probeTargetIdle = 2 * time.Minute

func (p *probeTargets) get(id string, started time.Time) (probeTarget, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.m[id]
	if !ok || started.IsZero() || !t.started.Equal(started) {
		return probeTarget{}, false
	}
	t.used = time.Now()
	p.m[id] = t
	return t, true
}

func (p *probeTargets) put(id string, t probeTarget) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]probeTarget{}
	}
	now := time.Now()
	for k, old := range p.m {
		if now.Sub(old.used) > probeTargetIdle {
			delete(p.m, k)
		}
	}
	t.used = now
	p.m[id] = t
}

// health returns the health last recorded for the task of id started at
// started, and when it was saved.
func (p *probeTargets) health(id string, started time.Time) (hs HealthState, saved time.Time, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, found := p.m[id]
	if !found || !t.hasHealth || !t.started.Equal(started) {
		return HealthState{}, time.Time{}, false
	}
	return t.health, t.saved, true
}

func (p *probeTargets) setHealth(id string, started time.Time, hs HealthState, saved time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, found := p.m[id]
	if !found || !t.started.Equal(started) {
		return // not cached (a zero start, or the task changed meanwhile)
	}
	t.health, t.hasHealth, t.saved = hs, true, saved
	p.m[id] = t
}

func (p *probeTargets) forget(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, id)
}

// probeTarget returns the task of container id started at started and the
// spec its probes run with, from the cache when the same task still runs.
func (c *Client) probeTarget(ctx context.Context, id string, started time.Time) (probeTarget, error) {
	if t, ok := c.probes.get(id, started); ok {
		return t, nil
	}
	task, spec, err := c.execTarget(ctx, id, ExecOptions{})
	if err != nil {
		return probeTarget{}, err
	}
	t := probeTarget{started: started, task: task, spec: spec}
	if !started.IsZero() {
		c.probes.put(id, t)
	}
	return t, nil
}

// probeExec runs argv in the task of container id started at started, its
// output into opts' writers, and returns its exit code.
func (c *Client) probeExec(ctx context.Context, id string, started time.Time, argv []string, opts ExecOptions) (int, error) {
	t, err := c.probeTarget(ctx, id, started)
	if err != nil {
		return 0, err
	}
	process := *t.spec.Process
	process.Args = argv
	code, err := c.execIn(ctx, id, t.task, &process, opts)
	if err != nil {
		c.probes.forget(id) // the task may be gone: load it anew next time
	}
	return code, err
}
