package reconcile

import (
	"github.com/stackdev/stack/engine"
)

// emitUnit appends the steps of one container slot, and its plan line.
func (p *planner) emitUnit(u *unit) {
	switch {
	case u.remove:
		p.emitRemove(u)
	case u.old == nil:
		p.emitCreate(u)
	case u.rebuild:
		p.emitRebuild(u)
	case u.replace:
		p.emitReplace(u)
	default:
		p.emitKeep(u)
	}
}

// line opens the plan line of a container.
func (p *planner) line(u *unit, a Action, name string, reasons ...string) int {
	key := []int{classOrphan}
	if !u.orphan {
		n := u.spec.Number
		if u.old != nil {
			n = u.old.Number
		}
		key = []int{classContainer, u.svc.pos, n}
	}
	return p.b.newChange(Change{Action: a, Type: "container", Name: name, Reason: joinReasons(reasons)}, key...)
}

func (p *planner) emitRemove(u *unit) {
	ch := p.line(u, ActionRemove, u.old.Name, u.reasons...)
	p.takeDown(ch, u)
}

// takeDown stops (when running) and removes the old container.
func (p *planner) takeDown(ch int, u *unit, waits ...int) {
	if needsStop(u.old.Status) {
		u.stop = p.b.add(ch, Step{Kind: KindStopContainer, Resource: u.old.Name, Target: Ref{ID: u.old.ID}, Timeout: p.opts.Timeout}, waits...)
		waits = []int{u.stop}
	}
	u.removed = p.b.add(ch, Step{Kind: KindRemoveContainer, Resource: u.old.Name, Target: Ref{ID: u.old.ID}}, waits...)
	p.nameFreed[u.old.Name] = u.removed
}

func (p *planner) emitCreate(u *unit) {
	ch := p.line(u, ActionAdd, u.spec.Name, u.reasons...)
	u.create = p.b.add(ch, Step{Kind: KindCreateContainer, Resource: u.spec.Name, Container: withConcerns(u.spec)})
	u.claim, u.entry, u.final = u.create, u.create, u.create
	u.ref = Ref{Step: u.create}
	p.startNew(ch, u)
}

// startNew starts the new container after its last step, unless NoStart.
func (p *planner) startNew(ch int, u *unit) {
	if p.opts.NoStart {
		return
	}
	u.final = p.b.add(ch, Step{Kind: KindStartContainer, Resource: u.spec.Name, Target: u.ref}, u.final)
}

// emitReplace is compose's order: create the new container under a
// temporary name, stop and remove the old one, rename the new one, start it.
func (p *planner) emitReplace(u *unit) {
	ch := p.line(u, ActionChange, u.spec.Name, u.reasons...)
	tmp := withConcerns(u.spec)
	tmp.Name = tempName(*u.old, u.spec.Name)
	tmp.Labels[engine.LabelReplace] = u.old.Name
	if _, ok := tmp.Labels[engine.LabelName]; ok {
		tmp.Labels[engine.LabelName] = tmp.Name
	}
	u.create = p.b.add(ch, Step{Kind: KindCreateContainer, Resource: u.spec.Name, Container: tmp})
	u.entry = u.create
	u.ref = Ref{Step: u.create}
	p.takeDown(ch, u, u.create)
	u.claim = p.b.add(ch, Step{Kind: KindRenameContainer, Resource: u.spec.Name, Target: u.ref, Name: u.spec.Name}, u.removed)
	u.final = u.claim
	p.startNew(ch, u)
}

// emitRebuild takes the old container down first: the network it is on is
// recreated in between.
func (p *planner) emitRebuild(u *unit) {
	ch := p.line(u, ActionChange, u.spec.Name, u.reasons...)
	p.takeDown(ch, u)
	u.create = p.b.add(ch, Step{Kind: KindCreateContainer, Resource: u.spec.Name, Container: withConcerns(u.spec)}, u.removed)
	u.claim, u.entry, u.final = u.create, u.create, u.create
	u.ref = Ref{Step: u.create}
	p.startNew(ch, u)
}

// emitKeep renames, starts or restarts an up-to-date container.
func (p *planner) emitKeep(u *unit) {
	u.ref = Ref{ID: u.old.ID}
	if !u.rename && !u.start && len(u.restart) == 0 {
		return
	}
	var reasons []string
	if u.rename {
		reasons = append(reasons, "rename from "+u.old.Name)
	}
	if u.start {
		reasons = append(reasons, "start: "+string(u.old.Status))
	}
	if len(u.restart) > 0 {
		reasons = append(reasons, "restart: dependency "+joinReasons(u.restart)+" recreated")
	}
	ch := p.line(u, ActionChange, u.spec.Name, reasons...)
	if u.rename {
		u.claim = p.b.add(ch, Step{Kind: KindRenameContainer, Resource: u.spec.Name, Target: u.ref, Name: u.spec.Name})
		u.final = u.claim
	}
	if len(u.restart) > 0 {
		u.restop = p.b.add(ch, Step{Kind: KindStopContainer, Resource: u.spec.Name, Target: u.ref, Timeout: p.opts.Timeout})
		u.final = u.restop
	}
	if u.start || len(u.restart) > 0 {
		u.entry = p.b.add(ch, Step{Kind: KindStartContainer, Resource: u.spec.Name, Target: u.ref}, u.final)
		u.final = u.entry
	}
}

// linkRestarts stops a dependent before its recreated dependency's old
// container stops, as compose does; the dependent starts again after the
// dependency (its start waits for the dependency's last steps). The stop
// waits for nothing, so it closes no cycle.
func (p *planner) linkRestarts() {
	for _, name := range p.x.order {
		for _, u := range p.units[name] {
			for _, dep := range u.restart {
				for _, d := range p.units[dep] {
					if d.replace || d.rebuild {
						p.b.wait(d.stopOld(), u.restop)
					}
				}
			}
		}
	}
}

func needsStop(s engine.Status) bool {
	return s != engine.StatusCreated && s != engine.StatusExited
}
