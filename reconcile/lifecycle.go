package reconcile

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/stackdev/stack/engine"
)

// LifecycleOptions selects what ComputeStop, ComputeStart and
// ComputeRestart act on. They work from the observed containers and their
// depends_on labels alone, as compose's stop, start and restart do.
type LifecycleOptions struct {
	Services []string      // none: every service of the project
	Timeout  time.Duration // stop: 0 lets the driver choose (stop_grace_period)
	NoDeps   bool          // restart: leave the dependents alone
}

// MissingServiceError says that start found no container for a service.
type MissingServiceError struct{ Service string }

func (e MissingServiceError) Error() string {
	return "service " + e.Service + " has no container to start: run `stack up` to create it"
}

// ComputeStop plans stopping the running and paused containers of the
// selected services, dependents before what they depend on.
func ComputeStop(state engine.State, project string, opts LifecycleOptions) Plan {
	g := newLifecycle(state, project, "stop")
	b := newBuilder(project)
	g.stop(b, g.selected(opts.Services), opts.Timeout)
	return b.plan(nil)
}

// ComputeStart plans starting the created and exited containers of the
// selected services and of what they depend on (transitively, as compose
// selects services), each after the services it depends on. A selected
// service without a container is an error naming it.
func ComputeStart(state engine.State, project string, opts LifecycleOptions) (Plan, error) {
	g := newLifecycle(state, project, "start")
	for _, s := range opts.Services {
		if len(g.bySvc[s]) == 0 {
			return Plan{}, MissingServiceError{Service: s}
		}
	}
	sel := g.selected(opts.Services)
	if len(opts.Services) > 0 {
		sel = g.withDependencies(sel)
	}
	b := newBuilder(project)
	g.start(b, sel, nil, func(c engine.Container) bool {
		return c.Status == engine.StatusCreated || c.Status == engine.StatusExited
	})
	return b.plan(nil), nil
}

// ComputeRestart plans stopping then starting every container of the
// selected services and, unless NoDeps, of the services that depend on them
// with restart: true (transitively), as compose's restart does.
func ComputeRestart(state engine.State, project string, opts LifecycleOptions) (Plan, error) {
	g := newLifecycle(state, project, "restart")
	for _, s := range opts.Services {
		if len(g.bySvc[s]) == 0 {
			return Plan{}, MissingServiceError{Service: s}
		}
	}
	sel := g.selected(opts.Services)
	if !opts.NoDeps && len(opts.Services) > 0 {
		sel = g.withRestartDependents(sel)
	}
	b := newBuilder(project)
	stops := g.stop(b, sel, opts.Timeout)
	g.start(b, sel, stops, func(engine.Container) bool { return true })
	return b.plan(nil), nil
}

// lifecycle is the project's non-one-off containers by service with the
// depends_on edges read from their labels.
type lifecycle struct {
	bySvc   map[string][]engine.Container
	deps    map[string][]string // service → services it depends on
	restart map[string][]string // service → services it depends on with restart: true
	order   []string            // dependencies first
	reason  string              // the plan line's reason: stop, start, restart
	changes map[string]int      // container ID → its plan line
}

// change returns the plan line of c, opening it on first use.
func (g *lifecycle) change(b *builder, c engine.Container, key ...int) int {
	if ch, ok := g.changes[c.ID]; ok {
		return ch
	}
	ch := b.newChange(Change{Action: ActionChange, Type: "container", Name: c.Name, Reason: g.reason}, key...)
	g.changes[c.ID] = ch
	return ch
}

func newLifecycle(state engine.State, project, reason string) *lifecycle {
	g := &lifecycle{bySvc: map[string][]engine.Container{}, deps: map[string][]string{}, restart: map[string][]string{},
		reason: reason, changes: map[string]int{}}
	for _, c := range state.ProjectContainers(project) {
		if !c.OneOff {
			g.bySvc[c.Service] = append(g.bySvc[c.Service], c)
		}
	}
	for svc, cs := range g.bySvc {
		sort.Slice(cs, func(a, b int) bool {
			return cs[a].Number < cs[b].Number || cs[a].Number == cs[b].Number && cs[a].Name < cs[b].Name
		})
		for _, c := range cs {
			for _, part := range strings.Split(c.Labels[engine.LabelDependsOn], ",") {
				fields := strings.Split(part, ":")
				if fields[0] == "" {
					continue
				}
				g.deps[svc] = append(g.deps[svc], fields[0])
				if len(fields) > 2 && fields[2] == "true" {
					g.restart[svc] = append(g.restart[svc], fields[0])
				}
			}
		}
		g.deps[svc], g.restart[svc] = sortedUnique(g.deps[svc]), sortedUnique(g.restart[svc])
	}
	g.order = reverseOrder(g.bySvc, g.deps)
	slices.Reverse(g.order)
	return g
}

// selected is the set of services named, or every service when none is.
func (g *lifecycle) selected(services []string) map[string]bool {
	sel := map[string]bool{}
	for svc := range g.bySvc {
		if len(services) == 0 || slices.Contains(services, svc) {
			sel[svc] = true
		}
	}
	return sel
}

// withRestartDependents adds, until nothing changes, every service that
// depends with restart: true on one already selected.
func (g *lifecycle) withRestartDependents(sel map[string]bool) map[string]bool {
	for changed := true; changed; {
		changed = false
		for _, svc := range g.order {
			if sel[svc] {
				continue
			}
			for _, dep := range g.restart[svc] {
				if sel[dep] {
					sel[svc], changed = true, true
					break
				}
			}
		}
	}
	return sel
}

// withDependencies adds every service a selected one depends on, transitively.
func (g *lifecycle) withDependencies(sel map[string]bool) map[string]bool {
	for i := len(g.order) - 1; i >= 0; i-- { // dependents first
		if sel[g.order[i]] {
			for _, dep := range g.deps[g.order[i]] {
				if _, ok := g.bySvc[dep]; ok {
					sel[dep] = true
				}
			}
		}
	}
	return sel
}

// stop adds a stop Step for each running or paused container of sel; a
// service's stops wait for those of the selected services depending on it.
// It returns the stop Step of each container by ID.
func (g *lifecycle) stop(b *builder, sel map[string]bool, timeout time.Duration) map[string]int {
	byID := map[string]int{}
	last := map[string][]int{}
	for i := len(g.order) - 1; i >= 0; i-- {
		svc := g.order[i]
		if !sel[svc] {
			continue
		}
		var waits []int
		for _, dependent := range dependentsOf(svc, g.deps) {
			waits = append(waits, last[dependent]...)
		}
		for _, c := range g.bySvc[svc] {
			if !needsStop(c.Status) && !awaitsRestart(c) {
				continue
			}
			ch := g.change(b, c, len(g.order)-i, c.Number)
			id := b.add(ch, Step{Kind: KindStopContainer, Resource: c.Name, Target: Ref{ID: c.ID}, Timeout: timeout}, waits...)
			last[svc] = append(last[svc], id)
			byID[c.ID] = id
		}
	}
	return byID
}

// awaitsRestart reports whether the daemon may start an exited container
// again for its restart policy (it ran and the user has not stopped it):
// stopping it records the user's stop, as docker stop cancels a restart.
func awaitsRestart(c engine.Container) bool {
	p := c.Restart.Name
	return p != "" && p != "no" && !c.UserStopped && !c.StartedAt.IsZero()
}

// start adds a start Step for each container of sel that want accepts; it
// waits for the container's own stop (from stops) and for the starts of the
// selected services it depends on.
func (g *lifecycle) start(b *builder, sel map[string]bool, stops map[string]int, want func(engine.Container) bool) {
	started := map[string][]int{}
	for i, svc := range g.order {
		if !sel[svc] {
			continue
		}
		var waits []int
		for _, dep := range g.deps[svc] {
			waits = append(waits, started[dep]...)
		}
		for _, c := range g.bySvc[svc] {
			if !want(c) {
				continue
			}
			ch := g.change(b, c, len(g.order)+i, c.Number)
			w := waits
			if stop, ok := stops[c.ID]; ok {
				w = append(slices.Clone(waits), stop)
			}
			started[svc] = append(started[svc], b.add(ch, Step{Kind: KindStartContainer, Resource: c.Name, Target: Ref{ID: c.ID}}, w...))
		}
	}
}
