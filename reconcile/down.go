package reconcile

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
)

// ComputeDown plans `stack down` of project. It works from the labels alone
// when desired is nil; with desired it also knows external resources and
// which containers are orphans. Containers go in reverse dependency order,
// then networks, then (with Volumes) named volumes and (with RMI) images.
func ComputeDown(state engine.State, project string, opts DownOptions, desired *compose.Desired) (Plan, error) {
	if opts.RMI != "" && opts.RMI != "local" && opts.RMI != "all" {
		return Plan{}, fmt.Errorf("unknown --rmi value %q: use local or all", opts.RMI)
	}
	d := downPlanner{st: state, project: project, opts: opts, desired: desired, b: newBuilder(project)}
	d.removeContainers()
	d.removeNetworks()
	d.removeVolumes()
	d.removeImages()
	return d.b.plan(d.warnings), nil
}

type downPlanner struct {
	st       engine.State
	project  string
	opts     DownOptions
	desired  *compose.Desired
	b        *builder
	warnings []string
	removed  []int              // container removal steps
	kept     []engine.Container // containers left in place
}

// doomed says whether down removes c: every container of a declared
// service, one-off `run` containers included (compose v2 removes those only
// with --remove-orphans, and then fails to remove the networks they hold),
// the rest only with RemoveOrphans.
func (d *downPlanner) doomed(c engine.Container) bool {
	if d.desired == nil {
		return true
	}
	if _, ok := d.desired.Service(c.Service); ok || slices.Contains(d.desired.Declared, c.Service) {
		return true
	}
	return d.opts.RemoveOrphans
}

func (d *downPlanner) removeContainers() {
	bySvc := map[string][]engine.Container{}
	var orphans []string
	for _, c := range d.st.ProjectContainers(d.project) {
		if !d.doomed(c) {
			d.kept = append(d.kept, c)
			orphans = append(orphans, c.Name)
			continue
		}
		bySvc[c.Service] = append(bySvc[c.Service], c)
	}
	if len(orphans) > 0 {
		slices.Sort(orphans)
		d.warnings = append(d.warnings, fmt.Sprintf("found orphan containers (%s) for this project: run with --remove-orphans to remove them", strings.Join(orphans, ", ")))
	}
	deps := d.dependencies(bySvc)
	order := reverseOrder(bySvc, deps)
	last := map[string][]int{}
	for i, svc := range order {
		cs := bySvc[svc]
		sort.Slice(cs, func(a, b int) bool {
			return cs[a].Number < cs[b].Number || cs[a].Number == cs[b].Number && cs[a].Name < cs[b].Name
		})
		var waits []int
		for _, dependent := range dependentsOf(svc, deps) {
			waits = append(waits, last[dependent]...)
		}
		for _, c := range cs {
			ch := d.b.newChange(Change{Action: ActionRemove, Type: "container", Name: c.Name}, 0, i, c.Number)
			w := waits
			if needsStop(c.Status) {
				w = []int{d.b.add(ch, Step{Kind: KindStopContainer, Resource: c.Name, Target: Ref{ID: c.ID}, Timeout: d.opts.Timeout}, waits...)}
			}
			rm := d.b.add(ch, Step{Kind: KindRemoveContainer, Resource: c.Name, Target: Ref{ID: c.ID}}, w...)
			last[svc] = append(last[svc], rm)
			d.removed = append(d.removed, rm)
		}
	}
}

// dependencies maps each service to what it depends on: from the compose
// file when given, else from the depends_on labels.
func (d *downPlanner) dependencies(bySvc map[string][]engine.Container) map[string][]string {
	deps := map[string][]string{}
	if d.desired != nil {
		for _, s := range d.desired.Services {
			for _, dep := range s.DependsOn {
				deps[s.Name] = append(deps[s.Name], dep.Service)
			}
		}
		return deps
	}
	for svc, cs := range bySvc {
		for _, c := range cs {
			deps[svc] = append(deps[svc], parseDependsOn(c.Labels[engine.LabelDependsOn])...)
		}
		deps[svc] = sortedUnique(deps[svc])
	}
	return deps
}

// parseDependsOn reads compose's "svc:condition:restart,..." label.
func parseDependsOn(label string) []string {
	var out []string
	for _, part := range strings.Split(label, ",") {
		if name, _, _ := strings.Cut(part, ":"); name != "" {
			out = append(out, name)
		}
	}
	return out
}

func dependentsOf(svc string, deps map[string][]string) []string {
	var out []string
	for s, ds := range deps {
		if slices.Contains(ds, svc) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// reverseOrder lists the services dependents first. A cycle in labels
// cannot stop a down: the services left are appended by name.
func reverseOrder(bySvc map[string][]engine.Container, deps map[string][]string) []string {
	svcs := map[string]*service{}
	for name := range bySvc {
		svcs[name] = &service{name: name}
		for _, dep := range deps[name] {
			if _, ok := bySvc[dep]; ok {
				svcs[name].deps = append(svcs[name].deps, engine.Dependency{Service: dep})
			}
		}
	}
	order, err := dependencyOrder(svcs)
	if err != nil {
		order = sortedKeys(svcs)
	}
	slices.Reverse(order)
	return order
}

// removeNetworks removes the project's networks once its containers are
// gone, except external ones and those orphans left in place still use.
func (d *downPlanner) removeNetworks() {
	nets := slices.Clone(d.st.Networks)
	sort.Slice(nets, func(i, j int) bool { return nets[i].Name < nets[j].Name })
	for _, n := range nets {
		if n.Project != d.project || d.external("network", n.Name) {
			continue
		}
		if users := d.keptUsing(func(c engine.Container) bool { return slices.Contains(c.Networks, n.Name) }); users != "" {
			d.warnings = append(d.warnings, fmt.Sprintf("network %s is kept: %s still use it", n.Name, users))
			continue
		}
		ch := d.b.newChange(Change{Action: ActionRemove, Type: "network", Name: n.Name}, 1)
		d.b.add(ch, Step{Kind: KindRemoveNetwork, Resource: n.Name}, d.removed...)
	}
}

func (d *downPlanner) removeVolumes() {
	if !d.opts.Volumes {
		return
	}
	vols := slices.Clone(d.st.Volumes)
	sort.Slice(vols, func(i, j int) bool { return vols[i].Name < vols[j].Name })
	for _, v := range vols {
		if v.Project != d.project || d.external("volume", v.Name) {
			continue
		}
		if users := d.keptUsing(func(c engine.Container) bool { return slices.Contains(c.Volumes, v.Name) }); users != "" {
			d.warnings = append(d.warnings, fmt.Sprintf("volume %s is kept: %s still use it", v.Name, users))
			continue
		}
		ch := d.b.newChange(Change{Action: ActionRemove, Type: "volume", Name: v.Name}, 2)
		d.b.add(ch, Step{Kind: KindRemoveVolume, Resource: v.Name}, d.removed...)
	}
}

// removeImages with --rmi all removes the images the project's containers
// run. stack builds nothing, so --rmi local has no image to remove.
func (d *downPlanner) removeImages() {
	if d.opts.RMI != "all" {
		return
	}
	imgs := map[string]bool{}
	for _, c := range d.st.ProjectContainers(d.project) {
		if d.doomed(c) && c.Image != "" {
			imgs[c.Image] = true
		}
	}
	if d.desired != nil {
		for _, c := range d.desired.Containers {
			imgs[c.Image] = true
		}
	}
	for _, c := range d.kept {
		delete(imgs, c.Image)
	}
	for _, img := range sortedKeys(imgs) {
		if _, ok := d.st.Images[img]; !ok {
			continue
		}
		ch := d.b.newChange(Change{Action: ActionRemove, Type: "image", Name: img}, 3)
		d.b.add(ch, Step{Kind: KindRemoveImage, Resource: img, Image: img}, d.removed...)
	}
}

// external says whether the compose file declares name external.
func (d *downPlanner) external(kind, name string) bool {
	if d.desired == nil {
		return false
	}
	if kind == "network" {
		for _, n := range d.desired.Networks {
			if n.Name == name {
				return n.External
			}
		}
		return false
	}
	for _, v := range d.desired.Volumes {
		if v.Name == name {
			return v.External
		}
	}
	return false
}

// keptUsing names the containers left in place that match use.
func (d *downPlanner) keptUsing(use func(engine.Container) bool) string {
	var names []string
	for _, c := range d.kept {
		if use(c) {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
