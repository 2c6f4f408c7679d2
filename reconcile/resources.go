package reconcile

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/stackdev/stack/engine"
)

// resStatus is what a network or volume needs.
type resStatus int

const (
	resOK      resStatus = iota
	resMissing           // create it
	resChanged           // remove and create it, with the containers on it
)

// resource is a network or volume the selected services use and the project
// owns (external ones are only checked).
type resource struct {
	name    string
	status  resStatus
	network engine.NetworkSpec
	volume  engine.VolumeSpec
	create  int // step, or -1
	remove  int // step, or -1
}

func newResource(name string) *resource { return &resource{name: name, create: -1, remove: -1} }

// checkNetworks finds the networks to create or recreate; a missing external
// one is an error naming it.
func (p *planner) checkNetworks() error {
	var errs []error
	for _, name := range p.usedNetworks() {
		spec, declared := p.x.networks[name]
		obs := findNetwork(p.st, name)
		switch {
		case !declared || spec.External:
			if obs == nil {
				errs = append(errs, missingExternal("network", name, declared))
			}
			continue
		}
		r := newResource(name)
		r.network = spec
		switch {
		case obs == nil:
			r.status = resMissing
		case obs.Project != p.project:
			p.warnf("network %s exists but was not created by stack for project %s: set `external: true` to use it as is", name, p.project)
		case obs.ConfigHash != "" && spec.ConfigHash != "" && obs.ConfigHash != spec.ConfigHash:
			r.status = p.changedNetwork(name)
		}
		p.nets[name] = r
	}
	return errors.Join(errs...)
}

// changedNetwork recreates a diverged network unless containers this plan
// does not remove are on it.
func (p *planner) changedNetwork(name string) resStatus {
	var blockers []string
	for _, c := range p.mine {
		if !slices.Contains(c.Networks, name) || p.willRemove(c) {
			continue
		}
		blockers = append(blockers, c.Name)
	}
	if p.opts.NoRecreate {
		p.warnf("network %s differs from its configuration but is kept: --no-recreate keeps the containers on it", name)
		return resOK
	}
	if len(blockers) == 0 {
		return resChanged
	}
	slices.Sort(blockers)
	p.warnf("network %s differs from its configuration but is kept: containers %s use it (run without service arguments, or with --remove-orphans)",
		name, strings.Join(blockers, ", "))
	return resOK
}

// willRemove says whether the plan removes or recreates c: containers of
// selected services, and orphans with RemoveOrphans.
func (p *planner) willRemove(c engine.Container) bool {
	if p.isOrphan(c) {
		return p.opts.RemoveOrphans
	}
	return !c.OneOff && p.selected[c.Service]
}

// checkVolumes finds the volumes to create. A volume whose configuration
// changed is kept with a warning: recreating it would lose data.
func (p *planner) checkVolumes() error {
	var errs []error
	for _, name := range p.usedVolumes() {
		spec, declared := p.x.volumes[name]
		obs := findVolume(p.st, name)
		switch {
		case !declared || spec.External:
			if obs == nil {
				errs = append(errs, missingExternal("volume", name, declared))
			}
			continue
		}
		r := newResource(name)
		r.volume = spec
		switch {
		case obs == nil:
			r.status = resMissing
		case obs.Project != p.project:
			p.warnf("volume %s exists but was not created by stack for project %s: set `external: true` to use it as is", name, p.project)
		case obs.ConfigHash != "" && spec.ConfigHash != "" && obs.ConfigHash != spec.ConfigHash:
			p.warnf("volume %s differs from its configuration but is kept, with its data: remove it (stack down -v) to recreate it", name)
		}
		p.vols[name] = r
	}
	return errors.Join(errs...)
}

func missingExternal(kind, name string, declared bool) error {
	if declared {
		return fmt.Errorf("%s %s is declared external but does not exist: create it first, or remove `external: true` to let stack create it", kind, name)
	}
	return fmt.Errorf("%s %s is not declared and does not exist: declare it under top-level %ss", kind, name, kind)
}

func (p *planner) usedNetworks() []string {
	var out []string
	for _, s := range p.active() {
		out = append(out, s.networks...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (p *planner) usedVolumes() []string {
	var out []string
	for _, s := range p.active() {
		out = append(out, s.volumes...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (p *planner) emitNetworks() {
	for _, name := range sortedKeys(p.nets) {
		r := p.nets[name]
		switch r.status {
		case resMissing:
			ch := p.b.newChange(Change{Action: ActionAdd, Type: "network", Name: name}, classNetwork)
			r.create = p.b.add(ch, Step{Kind: KindCreateNetwork, Resource: name, Network: r.network})
		case resChanged:
			ch := p.b.newChange(Change{Action: ActionChange, Type: "network", Name: name, Reason: "config changed"}, classNetwork)
			r.remove = p.b.add(ch, Step{Kind: KindRemoveNetwork, Resource: name})
			r.create = p.b.add(ch, Step{Kind: KindCreateNetwork, Resource: name, Network: r.network}, r.remove)
		}
	}
}

func (p *planner) emitVolumes() {
	for _, name := range sortedKeys(p.vols) {
		if r := p.vols[name]; r.status == resMissing {
			ch := p.b.newChange(Change{Action: ActionAdd, Type: "volume", Name: name}, classVolume)
			r.create = p.b.add(ch, Step{Kind: KindCreateVolume, Resource: name, Volume: r.volume})
		}
	}
}

// linkNetworks makes a recreated network's removal wait until every
// container on it is gone.
func (p *planner) linkNetworks() {
	all := slices.Clone(p.orphans)
	for _, units := range p.units {
		all = append(all, units...)
	}
	for _, r := range p.nets {
		if r.remove < 0 {
			continue
		}
		for _, u := range all {
			if u.removed >= 0 && u.attachedTo(r.name) {
				p.b.wait(r.remove, u.removed)
			}
		}
	}
}

func findNetwork(st engine.State, name string) *engine.Network {
	for i := range st.Networks {
		if st.Networks[i].Name == name {
			return &st.Networks[i]
		}
	}
	return nil
}

func findVolume(st engine.State, name string) *engine.Volume {
	for i := range st.Volumes {
		if st.Volumes[i].Name == name {
			return &st.Volumes[i]
		}
	}
	return nil
}

// attachments are the networks a spec joins, by full name.
func attachments(c engine.ContainerSpec) []string {
	if c.Network.Mode != "" && c.Network.Mode != "bridge" {
		return nil
	}
	out := make([]string, 0, len(c.Network.Networks))
	for _, n := range c.Network.Networks {
		out = append(out, n.Network)
	}
	return out
}

// mountedVolumes are the named volumes a spec mounts.
func mountedVolumes(c engine.ContainerSpec) []string {
	var out []string
	for _, m := range c.Mounts {
		if m.Type == engine.MountVolume && m.Source != "" {
			out = append(out, m.Source)
		}
	}
	return out
}

func (p *planner) warnf(format string, args ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf(format, args...))
}
