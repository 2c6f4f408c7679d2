package reconcile

import (
	"slices"
	"sort"
)

// builder accumulates Steps and Changes. Steps may be linked in any order; a
// Step holding a Ref to a create Step is made to wait for it.
type builder struct {
	project string
	steps   []Step
	changes []change
}

// change is a Change with the key that orders the printed plan.
type change struct {
	Change
	key []int
}

func newBuilder(project string) *builder { return &builder{project: project} }

// newChange opens a plan line. key orders lines: resource class first, then
// whatever the caller needs (service position, container number).
func (b *builder) newChange(c Change, key ...int) int {
	b.changes = append(b.changes, change{Change: c, key: key})
	return len(b.changes) - 1
}

// add appends a Step belonging to change ch (-1 for none) and returns its ID.
func (b *builder) add(ch int, s Step, waits ...int) int {
	s.ID = len(b.steps)
	s.Change = ch
	if s.Reason == "" && ch >= 0 {
		s.Reason = b.changes[ch].Reason
	}
	s.Waits, s.After = nil, nil
	b.steps = append(b.steps, s)
	if ch >= 0 {
		b.changes[ch].Steps = append(b.changes[ch].Steps, s.ID)
	}
	if s.Target.ID == "" && usesTarget(s.Kind) {
		b.wait(s.ID, s.Target.Step)
	}
	for _, r := range s.Targets {
		if r.ID == "" {
			b.wait(s.ID, r.Step)
		}
	}
	b.wait(s.ID, waits...)
	return s.ID
}

// wait makes step id wait for deps; negative IDs mean "no step" and are
// ignored, as are duplicates.
func (b *builder) wait(id int, deps ...int) {
	for _, d := range deps {
		if d < 0 || d == id || slices.Contains(b.steps[id].Waits, d) {
			continue
		}
		b.steps[id].Waits = append(b.steps[id].Waits, d)
		b.steps[id].After = slices.DeleteFunc(b.steps[id].After, func(a int) bool { return a == d })
	}
}

// after makes step id follow deps without depending on their success; a
// step it already waits for stays a wait.
func (b *builder) after(id int, deps ...int) {
	for _, d := range deps {
		s := &b.steps[id]
		if d < 0 || d == id || slices.Contains(s.Waits, d) || slices.Contains(s.After, d) {
			continue
		}
		s.After = append(s.After, d)
	}
}

func usesTarget(k Kind) bool {
	switch k {
	case KindStartContainer, KindStopContainer, KindRemoveContainer, KindRenameContainer:
		return true
	}
	return false
}

// plan sorts the lines by key and returns the Plan with Step.Change and the
// waits renumbered consistently.
func (b *builder) plan(warnings []string) Plan {
	order := make([]int, len(b.changes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		return slices.Compare(b.changes[order[i]].key, b.changes[order[j]].key) < 0
	})
	newIndex := make([]int, len(order))
	p := Plan{Project: b.project, Warnings: warnings}
	for i, old := range order {
		newIndex[old] = i
		c := b.changes[old].Change
		if c.Steps == nil {
			c.Steps = []int{}
		}
		p.Changes = append(p.Changes, c)
	}
	for _, s := range b.steps {
		if s.Change >= 0 {
			s.Change = newIndex[s.Change]
		}
		slices.Sort(s.Waits)
		slices.Sort(s.After)
		p.Steps = append(p.Steps, s)
	}
	p.dropEmptyChanges()
	return p
}

// dropEmptyChanges removes lines that ended up with no Step.
func (p *Plan) dropEmptyChanges() {
	remap := make([]int, len(p.Changes))
	var kept []Change
	for i, c := range p.Changes {
		remap[i] = -1
		if len(c.Steps) > 0 {
			remap[i] = len(kept)
			kept = append(kept, c)
		}
	}
	p.Changes = kept
	for i := range p.Steps {
		if p.Steps[i].Change >= 0 {
			p.Steps[i].Change = remap[p.Steps[i].Change]
		}
	}
}

// Resource classes, the first element of a change key.
const (
	classImage = iota
	classNetwork
	classVolume
	classContainer
	classOrphan
)
