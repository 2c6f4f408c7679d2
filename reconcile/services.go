package reconcile

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
)

// service is one desired service with its replica specs, sorted by number.
type service struct {
	name  string
	deps  []engine.Dependency
	specs []engine.ContainerSpec
	pull  engine.PullPolicy
	pos   int // position in dependency order
	// networks and volumes it uses by full name, from the service and its specs
	networks []string
	volumes  []string
}

// desiredIndex is Desired looked up by name, with a deterministic dependency
// order (dependencies first, ties broken by name).
type desiredIndex struct {
	d        compose.Desired
	services map[string]*service
	order    []string
	networks map[string]engine.NetworkSpec
	volumes  map[string]engine.VolumeSpec
}

func indexDesired(d compose.Desired) (desiredIndex, error) {
	x := desiredIndex{
		d:        d,
		services: map[string]*service{},
		networks: map[string]engine.NetworkSpec{},
		volumes:  map[string]engine.VolumeSpec{},
	}
	for _, s := range d.Services {
		x.services[s.Name] = &service{name: s.Name, deps: s.DependsOn, pull: s.PullPolicy,
			networks: slices.Clone(s.Networks), volumes: slices.Clone(s.Volumes)}
	}
	for _, c := range d.Containers {
		s, ok := x.services[c.Service]
		if !ok {
			s = &service{name: c.Service, deps: c.DependsOn}
			x.services[c.Service] = s
		}
		s.specs = append(s.specs, c)
		s.networks = append(s.networks, attachments(c)...)
		s.volumes = append(s.volumes, mountedVolumes(c)...)
	}
	for _, s := range x.services {
		slices.Sort(s.networks)
		s.networks = slices.Compact(s.networks)
		slices.Sort(s.volumes)
		s.volumes = slices.Compact(s.volumes)
		sort.SliceStable(s.specs, func(i, j int) bool { return s.specs[i].Number < s.specs[j].Number })
	}
	for _, n := range d.Networks {
		x.networks[n.Name] = n
	}
	for _, v := range d.Volumes {
		x.volumes[v.Name] = v
	}
	order, err := dependencyOrder(x.services)
	if err != nil {
		return x, err
	}
	x.order = order
	for i, name := range order {
		x.services[name].pos = i
	}
	return x, nil
}

// dependencyOrder is Kahn's algorithm over depends_on, smallest name first
// among the ready ones. Edges to unknown services are ignored. A cycle is an
// error that prints it: "a -> b -> a".
func dependencyOrder(svcs map[string]*service) ([]string, error) {
	indeg := map[string]int{}
	dependents := map[string][]string{}
	for name, s := range svcs {
		indeg[name] += 0
		for _, d := range s.deps {
			if _, ok := svcs[d.Service]; ok && d.Service != name {
				indeg[name]++
				dependents[d.Service] = append(dependents[d.Service], name)
			}
		}
	}
	var ready, order []string
	for name, n := range indeg {
		if n == 0 {
			ready = append(ready, name)
		}
	}
	for len(ready) > 0 {
		slices.Sort(ready)
		name := ready[0]
		ready = ready[1:]
		order = append(order, name)
		for _, dep := range dependents[name] {
			if indeg[dep]--; indeg[dep] == 0 {
				ready = append(ready, dep)
			}
		}
	}
	if len(order) < len(svcs) {
		return nil, fmt.Errorf("depends_on has a cycle: %s: remove one of these dependencies", findCycle(svcs))
	}
	return order, nil
}

// findCycle returns one cycle as "a -> b -> a".
func findCycle(svcs map[string]*service) string {
	names := make([]string, 0, len(svcs))
	for n := range svcs {
		names = append(names, n)
	}
	slices.Sort(names)
	state := map[string]int{} // 1 visiting, 2 done
	var stack []string
	var found []string
	var visit func(string) bool
	visit = func(n string) bool {
		state[n] = 1
		stack = append(stack, n)
		for _, d := range svcs[n].deps {
			if _, ok := svcs[d.Service]; !ok {
				continue
			}
			if state[d.Service] == 1 {
				i := slices.Index(stack, d.Service)
				found = append(slices.Clone(stack[i:]), d.Service)
				return true
			}
			if state[d.Service] == 0 && visit(d.Service) {
				return true
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = 2
		return false
	}
	for _, n := range names {
		if state[n] == 0 && visit(n) {
			break
		}
	}
	return strings.Join(found, " -> ")
}

// selection returns the targeted services and everything they need: all
// services when none is named; with NoDeps only the named ones.
func (x desiredIndex) selection(opts Options) (targeted, selected map[string]bool) {
	targeted, selected = map[string]bool{}, map[string]bool{}
	if len(opts.Services) == 0 {
		for name := range x.services {
			targeted[name], selected[name] = true, true
		}
		return targeted, selected
	}
	var add func(string)
	add = func(name string) {
		s, ok := x.services[name]
		if !ok || selected[name] {
			return
		}
		selected[name] = true
		if opts.NoDeps {
			return
		}
		for _, d := range s.deps {
			add(d.Service)
		}
	}
	for _, name := range opts.Services {
		targeted[name] = true
		add(name)
	}
	return targeted, selected
}

// dependents returns, for each service, the services that depend on it.
func (x desiredIndex) dependents() map[string][]engine.Dependency {
	out := map[string][]engine.Dependency{}
	for _, name := range x.order {
		for _, d := range x.services[name].deps {
			dd := d
			dd.Service = name
			out[d.Service] = append(out[d.Service], dd)
		}
	}
	return out
}

// containerName is compose's default name for replica n.
func containerName(project, svc string, n int) string {
	return fmt.Sprintf("%s-%s-%d", project, svc, n)
}
