package ctrd

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"
)

// probeTargets keeps, per container, what a healthcheck probe needs from
// containerd (the process spec of its exec, encoded as the Exec request
// carries it) for as long as the same task runs. The daemon probes every
// healthchecked container every interval, and loading the container anew
// costs two requests, a decode of the OCI spec and an encode of the
// process each time; with the cache a probe is the exec alone.
type probeTargets struct {
	mu sync.Mutex
	m  map[string]probeTarget
}

type probeTarget struct {
	started time.Time
	spec    *oci.Spec
	// argv and pspec: the process spec last encoded, for the probe argv.
	argv  []string
	pspec *anypb.Any
	used  time.Time
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

// probeTarget returns the spec the probes of container id (its task
// started at started) run with, from the cache when the same task still
// runs.
func (c *Client) probeTarget(ctx context.Context, id string, started time.Time) (probeTarget, error) {
	if t, ok := c.probes.get(id, started); ok {
		return t, nil
	}
	_, spec, err := c.execTarget(ctx, id, ExecOptions{})
	if err != nil {
		return probeTarget{}, err
	}
	t := probeTarget{started: started, spec: spec}
	if !started.IsZero() {
		c.probes.put(id, t)
	}
	return t, nil
}

// setSpec records the encoded process spec of argv in id's entry.
func (p *probeTargets) setSpec(id string, started time.Time, argv []string, pspec *anypb.Any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, found := p.m[id]
	if !found || !t.started.Equal(started) {
		return
	}
	t.argv, t.pspec = argv, pspec
	p.m[id] = t
}

// probeSpec is the container's process with argv, encoded for the Exec
// request: once per task and argv.
func (c *Client) probeSpec(id string, t probeTarget, argv []string) (*anypb.Any, error) {
	if t.pspec != nil && slices.Equal(t.argv, argv) {
		return t.pspec, nil
	}
	process := *t.spec.Process
	process.Args = argv
	pspec, err := typeurl.MarshalAnyToProto(&process)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	c.probes.setSpec(id, t.started, argv, pspec)
	return pspec, nil
}

// probeExec runs argv in the task of container id started at started and
// returns its exit code and the first max bytes of its output.
func (c *Client) probeExec(ctx context.Context, id string, started time.Time, argv []string, max int) (int, []byte, error) {
	t, err := c.probeTarget(ctx, id, started)
	if err != nil {
		return 0, nil, err
	}
	pspec, err := c.probeSpec(id, t, argv)
	if err != nil {
		return 0, nil, err
	}
	code, out, err := c.runProbe(ctx, id, pspec, max)
	if err != nil {
		c.probes.forget(id) // the task may be gone: load it anew next time
	}
	return code, out, err
}
