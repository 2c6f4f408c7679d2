package reconcile

import (
	"encoding/json"
	"time"
)

// jsonPlan is the machine form of a Plan (`stack plan --format json`).
type jsonPlan struct {
	Project  string     `json:"project"`
	Empty    bool       `json:"empty"`
	Summary  jsonCounts `json:"summary"`
	Changes  []Change   `json:"changes"`
	Steps    []jsonStep `json:"steps"`
	Warnings []string   `json:"warnings"`
}

type jsonCounts struct {
	Pull   int `json:"pull"`
	Add    int `json:"add"`
	Change int `json:"change"`
	Remove int `json:"remove"`
}

type jsonStep struct {
	ID        int           `json:"id"`
	Kind      Kind          `json:"kind"`
	Resource  string        `json:"resource"`
	Reason    string        `json:"reason,omitempty"`
	Waits     []int         `json:"waits"`
	After     []int         `json:"after,omitempty"`
	Change    int           `json:"change"`
	Target    *Ref          `json:"target,omitempty"`
	Targets   []Ref         `json:"targets,omitempty"`
	Name      string        `json:"name,omitempty"` // create: the name created under; rename: the new name
	Image     string        `json:"image,omitempty"`
	Policy    string        `json:"pull_policy,omitempty"`
	Timeout   time.Duration `json:"timeout_ns,omitempty"`
	Condition string        `json:"condition,omitempty"`
}

// JSON renders the plan for machines. Specs are left out: the steps say
// which resource each call touches and in which order.
func (p Plan) JSON() ([]byte, error) {
	n := p.Counts()
	out := jsonPlan{
		Project:  p.Project,
		Empty:    p.Empty(),
		Summary:  jsonCounts{Pull: n[ActionPull], Add: n[ActionAdd], Change: n[ActionChange], Remove: n[ActionRemove]},
		Changes:  p.Changes,
		Steps:    []jsonStep{},
		Warnings: p.Warnings,
	}
	if out.Changes == nil {
		out.Changes = []Change{}
	}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	for _, s := range p.Steps {
		out.Steps = append(out.Steps, s.toJSON())
	}
	return json.MarshalIndent(out, "", "  ")
}

func (s Step) toJSON() jsonStep {
	j := jsonStep{ID: s.ID, Kind: s.Kind, Resource: s.Resource, Reason: s.Reason, Waits: s.Waits, After: s.After, Change: s.Change,
		Targets: s.Targets, Image: s.Image, Policy: string(s.Pull), Timeout: s.Timeout, Condition: s.Condition}
	if j.Waits == nil {
		j.Waits = []int{}
	}
	switch s.Kind {
	case KindStartContainer, KindStopContainer, KindRemoveContainer, KindRenameContainer:
		t := s.Target
		j.Target = &t
		j.Name = s.Name
	case KindCreateContainer:
		j.Name = s.Container.Name
	}
	return j
}

// MarshalJSON writes {"id": "..."} for an existing container and
// {"step": N} for the one a create step makes.
func (r Ref) MarshalJSON() ([]byte, error) {
	if r.ID != "" {
		return json.Marshal(struct {
			ID string `json:"id"`
		}{r.ID})
	}
	return json.Marshal(struct {
		Step int `json:"step"`
	}{r.Step})
}
