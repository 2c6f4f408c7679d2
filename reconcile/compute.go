package reconcile

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
)

// Compute decides what `stack up` must do so that the host matches desired.
// It is pure: the same input gives the same Plan.
//
// The state may hold networks and volumes of other projects (Compute looks
// external ones up by name there) but Compute only changes what carries the
// project's label.
func Compute(desired compose.Desired, state engine.State, opts Options) (Plan, error) {
	x, err := indexDesired(desired)
	if err != nil {
		return Plan{}, err
	}
	if err := opts.validate(x); err != nil {
		return Plan{}, err
	}
	p := newPlanner(x, state, opts)
	if err := p.checkResources(); err != nil {
		return Plan{}, err
	}
	p.classifyContainers()
	p.markRestarts()
	p.emit()
	p.link()
	return p.b.plan(p.warnings), nil
}

// ComputePulls plans only the image pulls Compute would plan. A caller that
// wants digests compared after an always-pull applies this plan first,
// observes again, then calls Compute with Pull set to missing.
func ComputePulls(desired compose.Desired, state engine.State, opts Options) (Plan, error) {
	x, err := indexDesired(desired)
	if err != nil {
		return Plan{}, err
	}
	if err := opts.validate(x); err != nil {
		return Plan{}, err
	}
	p := newPlanner(x, state, opts)
	if err := p.checkImages(); err != nil {
		return Plan{}, err
	}
	p.emitPulls()
	return p.b.plan(nil), nil
}

// planner holds one Compute's working state. It is not shared.
type planner struct {
	x        desiredIndex
	st       engine.State
	opts     Options
	b        *builder
	project  string
	targeted map[string]bool
	selected map[string]bool
	warnings []string

	mine    []engine.Container            // the project's containers
	bySvc   map[string][]engine.Container // the project's non-one-off containers by service
	images  map[string]engine.PullPolicy  // image → policy, for the images to pull
	nets    map[string]*resource
	vols    map[string]*resource
	units   map[string][]*unit // by service
	orphans []*unit
	// recreated holds the names of containers replaced in this plan, for
	// the ones sharing their namespaces.
	recreated map[string]bool

	pulls      map[string]int // image → pull step
	waitSteps  map[string]int // "service condition" → wait step
	nameFreed  map[string]int // container name → step removing its holder
	dependents map[string][]engine.Dependency
	oneShots   map[string]bool // services others wait for to complete
}

func newPlanner(x desiredIndex, st engine.State, opts Options) *planner {
	p := &planner{
		x: x, st: st, opts: opts,
		b:          newBuilder(x.d.Project),
		project:    x.d.Project,
		images:     map[string]engine.PullPolicy{},
		nets:       map[string]*resource{},
		vols:       map[string]*resource{},
		units:      map[string][]*unit{},
		recreated:  map[string]bool{},
		pulls:      map[string]int{},
		waitSteps:  map[string]int{},
		nameFreed:  map[string]int{},
		dependents: x.dependents(),
		oneShots:   x.d.OneShots(),
	}
	p.targeted, p.selected = x.selection(opts)
	p.mine = st.ProjectContainers(p.project)
	p.bySvc = map[string][]engine.Container{}
	for _, c := range p.mine {
		if !c.OneOff {
			p.bySvc[c.Service] = append(p.bySvc[c.Service], c)
		}
	}
	return p
}

// active returns the selected services that run at least one replica, in
// dependency order.
func (p *planner) active() []*service {
	var out []*service
	for _, name := range p.x.order {
		if s := p.x.services[name]; p.selected[name] && len(s.specs) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// checkResources classifies images, networks and volumes and returns every
// problem found at once.
func (p *planner) checkResources() error {
	return errors.Join(p.checkImages(), p.checkNetworks(), p.checkVolumes())
}

// checkImages decides which images to pull: always when a service's policy
// says so, when missing if absent; never with an absent image is an error.
func (p *planner) checkImages() error {
	rank := map[engine.PullPolicy]int{engine.PullNever: 1, engine.PullMissing: 2, engine.PullAlways: 3}
	want := map[string]engine.PullPolicy{}
	users := map[string]string{}
	for _, s := range p.active() {
		pol := p.pullPolicy(s)
		img := s.specs[0].Image
		if rank[pol] > rank[want[img]] {
			want[img], users[img] = pol, s.name
		}
	}
	var errs []error
	for _, img := range sortedKeys(want) {
		_, present := p.st.Images[img]
		switch {
		case want[img] == engine.PullAlways, want[img] == engine.PullMissing && !present:
			p.images[img] = want[img]
		case want[img] == engine.PullNever && !present:
			errs = append(errs, fmt.Errorf("image %s of service %s is not present and the pull policy is never: pull it first (stack pull) or use --pull missing", img, users[img]))
		}
	}
	return errors.Join(errs...)
}

func (p *planner) pullPolicy(s *service) engine.PullPolicy {
	switch {
	case p.opts.Pull != "":
		return p.opts.Pull
	case s.pull == engine.PullAlways, s.pull == engine.PullNever:
		return s.pull
	}
	return engine.PullMissing
}

// emit appends every Step, resource by resource.
func (p *planner) emit() {
	p.emitPulls()
	p.emitNetworks()
	p.emitVolumes()
	for _, s := range p.x.order {
		for _, u := range p.units[s] {
			p.emitUnit(u)
		}
	}
	for _, u := range p.orphans {
		p.emitUnit(u)
	}
}

func (p *planner) emitPulls() {
	for _, img := range sortedKeys(p.images) {
		reason := "not present"
		if p.images[img] == engine.PullAlways {
			reason = "pull policy always"
		}
		ch := p.b.newChange(Change{Action: ActionPull, Type: "image", Name: img, Reason: reason}, classImage)
		p.pulls[img] = p.b.add(ch, Step{Kind: KindPullImage, Resource: img, Image: img, Pull: p.images[img]})
	}
}

// link adds the waits between resources: containers after their image,
// networks, volumes and dependencies; names claimed after they are freed;
// networks recreated after their containers are gone.
func (p *planner) link() {
	p.linkNetworks()
	for _, name := range p.x.order {
		for _, u := range p.units[name] {
			p.linkUnit(u)
		}
	}
	p.linkRestarts()
}

// linkUnit orders one container slot's steps after what they need.
func (p *planner) linkUnit(u *unit) {
	if u.create >= 0 {
		p.linkCreate(u)
	}
	if u.claim >= 0 {
		if freed, ok := p.nameFreed[u.spec.Name]; ok && freed != u.removed {
			p.b.wait(u.claim, freed)
		}
	}
	if u.entry >= 0 {
		hard, soft := p.dependencyWaits(u.svc)
		p.b.wait(u.entry, hard...)
		p.b.after(u.entry, soft...)
	}
}

// linkCreate makes a create wait for its image, networks and volumes, and
// for the removal of a leftover of an interrupted run holding its name.
func (p *planner) linkCreate(u *unit) {
	if freed, ok := p.nameFreed[p.b.steps[u.create].Container.Name]; ok && freed != u.removed {
		p.b.wait(u.create, freed)
	}
	if id, ok := p.pulls[u.spec.Image]; ok {
		p.b.wait(u.create, id)
	}
	for _, n := range attachments(u.spec) {
		if r := p.nets[n]; r != nil {
			p.b.wait(u.create, r.create)
		}
	}
	for _, v := range mountedVolumes(u.spec) {
		if r := p.vols[v]; r != nil {
			p.b.wait(u.create, r.create)
		}
	}
}

// dependencyWaits are the steps a service's first steps wait for: the last
// steps of each dependency, or a wait step for a health condition. Those of
// a dependency that is not required only order (soft).
func (p *planner) dependencyWaits(s *service) (hard, soft []int) {
	for _, d := range s.deps {
		ids := p.ready(d.Service)
		if d.Condition != "" && d.Condition != "service_started" {
			ids = nil
			if w := p.waitStep(d.Service, d.Condition, p.ready(d.Service)); w >= 0 {
				ids = []int{w}
			}
		}
		if d.Required {
			hard = append(hard, ids...)
		} else {
			soft = append(soft, ids...)
		}
	}
	return hard, soft
}

// ready are the steps after which a service counts as started.
func (p *planner) ready(svc string) []int {
	var out []int
	for _, u := range p.units[svc] {
		if !u.remove && u.final >= 0 {
			out = append(out, u.final)
		}
	}
	return out
}

// waitStep returns the shared wait step for svc reaching condition, or -1
// when the service runs no container.
func (p *planner) waitStep(svc, condition string, ready []int) int {
	key := svc + " " + condition
	if id, ok := p.waitSteps[key]; ok {
		return id
	}
	var targets []Ref
	for _, u := range p.units[svc] {
		if !u.remove {
			targets = append(targets, u.ref)
		}
	}
	if len(targets) == 0 {
		return -1
	}
	s := p.x.services[svc]
	ch := p.b.newChange(Change{Action: ActionWait, Type: "service", Name: svc, Reason: condition}, classContainer, s.pos, 1<<30)
	id := p.b.add(ch, Step{Kind: KindWait, Resource: svc, Condition: condition, Targets: targets}, ready...)
	p.waitSteps[key] = id
	return id
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func joinReasons(r []string) string { return strings.Join(r, "; ") }
