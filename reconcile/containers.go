package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/stackdev/stack/engine"
)

// unit is one container slot of a service: an existing container, a new
// one, or both during a replace.
type unit struct {
	svc     *service
	spec    engine.ContainerSpec // desired; zero for a removal
	old     *engine.Container    // observed; nil for a new container
	remove  bool                 // scale down, duplicate or orphan
	orphan  bool                 // its service is gone (or a finished one-off)
	replace bool                 // create new, stop old, remove old, rename new
	rebuild bool                 // stop and remove old, then create: its network is recreated
	rename  bool                 // up to date but under another name
	start   bool                 // up to date but not running
	restart []string             // dependencies recreated with restart: true
	reasons []string
	ref     Ref // the container once the plan ran

	// Steps, or -1.
	create  int // create of the new container
	stop    int // stop of the old container
	removed int // removal of the old container
	claim   int // the step that gives the container its final name
	entry   int // the first step that must follow the dependencies
	final   int // the step after which the container is up
	restop  int // restart: the stop step
}

// reset marks every step as not planned.
func (u *unit) reset() *unit {
	u.create, u.stop, u.removed, u.claim, u.entry, u.final, u.restop = -1, -1, -1, -1, -1, -1, -1
	return u
}

func (u *unit) attachedTo(network string) bool {
	if u.old != nil && slices.Contains(u.old.Networks, network) {
		return true
	}
	return slices.Contains(attachments(u.spec), network)
}

// stopOld is the step that takes the old container down.
func (u *unit) stopOld() int {
	if u.stop >= 0 {
		return u.stop
	}
	return u.removed
}

// classifyContainers decides, service by service in dependency order, what
// happens to each container, then finds the orphans.
func (p *planner) classifyContainers() {
	for _, name := range p.x.order {
		if p.selected[name] {
			p.classifyService(p.x.services[name])
		}
	}
	p.findOrphans()
}

type candidate struct {
	c       engine.Container
	reasons []string
}

// classifyService keeps the lowest-numbered up-to-date containers, then the
// lowest-numbered diverged ones (replaced), removes the rest (highest numbers
// and diverged ones go first when scaling down) and numbers new replicas from
// the highest existing + 1.
func (p *planner) classifyService(s *service) {
	existing := p.existing(s.name)
	strategy := p.opts.strategy(p.targeted[s.name])
	var fresh, stale []candidate
	for _, c := range existing {
		var reasons []string
		if len(s.specs) > 0 {
			reasons = p.mustRecreate(strategy, c, p.specFor(s, c.Number))
		}
		if len(reasons) == 0 {
			fresh = append(fresh, candidate{c, nil})
		} else {
			stale = append(stale, candidate{c, reasons})
		}
	}
	kept := map[int]string{}
	for _, cd := range append(fresh, stale...) {
		if holder, dup := kept[cd.c.Number]; dup || len(kept) >= len(s.specs) {
			reason := "scale down"
			if dup {
				reason = "duplicate of " + holder
			}
			p.addUnit(s, &unit{old: &cd.c, remove: true, reasons: []string{reason}})
			continue
		}
		kept[cd.c.Number] = cd.c.Name
		p.addUnit(s, p.keep(s, cd))
	}
	next := 1
	for _, c := range existing {
		next = max(next, c.Number+1)
	}
	for ; len(kept) < len(s.specs); next++ {
		kept[next] = ""
		u := &unit{spec: p.specFor(s, next)}
		if len(existing) > 0 {
			u.reasons = []string{"scale up"}
		}
		p.addUnit(s, u)
	}
	// Removals first: they free names and resources the others may need.
	sort.SliceStable(p.units[s.name], func(i, j int) bool {
		return p.units[s.name][i].remove && !p.units[s.name][j].remove
	})
}

// existing returns the service's non-one-off containers by number, the one
// already named as desired first among equal numbers.
func (p *planner) existing(svc string) []engine.Container {
	out := slices.Clone(p.bySvc[svc])
	s := p.x.services[svc]
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Number != b.Number {
			return a.Number < b.Number
		}
		ai, bi := len(s.specs) > 0 && a.Name == p.specFor(s, a.Number).Name, len(s.specs) > 0 && b.Name == p.specFor(s, b.Number).Name
		if ai != bi {
			return ai
		}
		return a.ID < b.ID
	})
	return out
}

func (p *planner) addUnit(s *service, u *unit) {
	u.svc = s
	u.reset()
	p.units[s.name] = append(p.units[s.name], u)
}

// keep decides what an existing container that stays needs: a replace, a
// rebuild (its network is recreated), a rename, a start, or nothing.
func (p *planner) keep(s *service, cd candidate) *unit {
	c := cd.c
	u := &unit{old: &c, spec: p.specFor(s, c.Number), reasons: cd.reasons, replace: len(cd.reasons) > 0}
	for _, n := range sortedUnique(append(slices.Clone(c.Networks), attachments(u.spec)...)) {
		if r := p.nets[n]; r != nil && r.status == resChanged {
			u.rebuild = true
			u.reasons = append(u.reasons, "network "+n+" changed")
		}
	}
	if u.replace || u.rebuild {
		u.replace = !u.rebuild
		p.recreated[u.spec.Name], p.recreated[c.Name] = true, true
		return u
	}
	u.rename = c.Name != u.spec.Name
	u.start = !p.opts.NoStart && (c.Status == engine.StatusCreated || c.Status == engine.StatusExited) && !p.completed(s, c)
	return u
}

// completed reports a one-shot that already did its job: a container of a
// service others wait for with service_completed_successfully, exited 0 on
// its own (not stopped by the user) with its config unchanged (else it is
// replaced). compose runs it again on every up; that only repeats work a
// migration or seed job must not repeat.
func (p *planner) completed(s *service, c engine.Container) bool {
	return p.oneShots[s.name] && c.Status == engine.StatusExited && c.ExitCode == 0 && !c.UserStopped
}

// mustRecreate returns why c no longer matches spec; none means up to date.
func (p *planner) mustRecreate(strategy recreate, c engine.Container, spec engine.ContainerSpec) []string {
	switch strategy {
	case recreateNever:
		return nil
	case recreateForce:
		return []string{"forced"}
	}
	var why []string
	if r := configChange(c, spec); r != "" {
		why = append(why, r)
	}
	if d, ok := p.st.Images[spec.Image]; ok && c.Image == spec.Image && c.ImageID != "" && d != c.ImageID {
		why = append(why, "image changed")
	}
	for _, ns := range []string{spec.Network.Mode, spec.Security.IPC, spec.Security.PID} {
		if parent, ok := strings.CutPrefix(ns, "container:"); ok && p.recreated[parent] {
			why = append(why, "shares namespaces with recreated "+parent)
			break
		}
	}
	if c.Status == engine.StatusRunning {
		for _, n := range attachments(spec) {
			if !slices.Contains(c.Networks, n) || p.missing(p.nets[n]) {
				why = append(why, "network "+n+" missing")
			}
		}
	}
	for _, v := range mountedVolumes(spec) {
		if !slices.Contains(c.Volumes, v) || p.missing(p.vols[v]) {
			why = append(why, "volume "+v+" missing")
		}
	}
	return why
}

func (p *planner) missing(r *resource) bool { return r != nil && r.status == resMissing }

// specFor is the desired spec of replica n: the declared one, or the first
// one renumbered.
func (p *planner) specFor(s *service, n int) engine.ContainerSpec {
	for _, sp := range s.specs {
		if sp.Number == n {
			return sp
		}
	}
	sp := s.specs[0]
	if sp.Name == containerName(p.project, s.name, sp.Number) {
		sp.Name = containerName(p.project, s.name, n)
	}
	sp.Number = n
	sp.Labels = maps.Clone(sp.Labels)
	if _, ok := sp.Labels[engine.LabelNumber]; ok {
		sp.Labels[engine.LabelNumber] = strconv.Itoa(n)
	}
	if _, ok := sp.Labels[engine.LabelName]; ok {
		sp.Labels[engine.LabelName] = sp.Name
	}
	return sp
}

// isOrphan: a container of a service no longer declared, or a one-off
// container that is not running.
func (p *planner) isOrphan(c engine.Container) bool {
	if c.OneOff {
		return c.Status != engine.StatusRunning && c.Status != engine.StatusPaused
	}
	if _, ok := p.x.services[c.Service]; ok {
		return false
	}
	return !slices.Contains(p.x.d.Declared, c.Service)
}

// findOrphans removes the orphans with RemoveOrphans, else warns about them.
func (p *planner) findOrphans() {
	var names []string
	for _, c := range p.mine {
		if !p.isOrphan(c) {
			continue
		}
		if !p.opts.RemoveOrphans {
			names = append(names, c.Name)
			continue
		}
		u := &unit{old: &c, remove: true, orphan: true, reasons: []string{"orphan"}}
		p.orphans = append(p.orphans, u.reset())
	}
	sort.Slice(p.orphans, func(i, j int) bool { return p.orphans[i].old.Name < p.orphans[j].old.Name })
	if len(names) > 0 {
		slices.Sort(names)
		p.warnf("found orphan containers (%s) for this project: if you removed or renamed their service in the compose file, run this command with --remove-orphans to clean them up",
			strings.Join(names, ", "))
	}
}

// markRestarts finds the running containers to stop and start again because
// a dependency declared with restart: true is recreated.
func (p *planner) markRestarts() {
	if p.opts.NoStart {
		return
	}
	for _, name := range p.x.order {
		if !p.recreatedService(name) {
			continue
		}
		for _, d := range p.dependents[name] {
			if !d.Restart || !p.selected[d.Service] {
				continue
			}
			for _, u := range p.units[d.Service] {
				if u.old != nil && !u.remove && !u.replace && !u.rebuild && u.old.Status == engine.StatusRunning {
					u.restart = append(u.restart, name)
				}
			}
		}
	}
}

func (p *planner) recreatedService(name string) bool {
	for _, u := range p.units[name] {
		if u.replace || u.rebuild {
			return true
		}
	}
	return false
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

func tempName(old engine.Container, name string) string {
	return fmt.Sprintf("%s_%s", shortID(old.ID), name)
}
