package reconcile

import (
	"fmt"
	"strings"
	"time"

	"github.com/stackdev/stack/engine"
)

// Kind names the one engine call a Step makes.
type Kind string

const (
	KindPullImage       Kind = "pull-image"
	KindRemoveImage     Kind = "remove-image"
	KindCreateNetwork   Kind = "create-network"
	KindRemoveNetwork   Kind = "remove-network"
	KindCreateVolume    Kind = "create-volume"
	KindRemoveVolume    Kind = "remove-volume"
	KindCreateContainer Kind = "create-container"
	KindStartContainer  Kind = "start-container"
	KindStopContainer   Kind = "stop-container"
	KindRemoveContainer Kind = "remove-container"
	KindRenameContainer Kind = "rename-container"
	// KindWait gates dependents on a depends_on condition other than
	// service_started (service_healthy, service_completed_successfully).
	KindWait Kind = "wait"
)

// Ref names a container: by ID when it exists before the plan runs, or by the
// CreateContainer Step whose result is the ID. A Step holding a Ref to a Step
// always waits for it, so Apply can resolve the Ref before launching.
type Ref struct {
	ID   string
	Step int // used when ID is empty
}

func (r Ref) String() string {
	if r.ID != "" {
		return shortID(r.ID)
	}
	return fmt.Sprintf("#%d", r.Step)
}

// Step is one engine call. Only the fields its Kind needs are set.
type Step struct {
	ID       int
	Kind     Kind
	Resource string // the name a user knows: container, network, volume or image
	Reason   string // for humans only; Apply never reads it
	Waits    []int  // IDs of the Steps that must succeed first
	// After are Steps it only follows: it runs once they ended, even if they
	// failed (a depends_on with required: false).
	After  []int
	Change int // index in Plan.Changes of the line it belongs to; -1 for none

	Image     string               // pull-image, remove-image
	Pull      engine.PullPolicy    // pull-image
	Network   engine.NetworkSpec   // create-network
	Volume    engine.VolumeSpec    // create-volume
	Container engine.ContainerSpec // create-container
	Target    Ref                  // start, stop, remove, rename
	Name      string               // rename-container: the new name
	Timeout   time.Duration        // stop-container; 0 lets the driver choose
	Condition string               // wait
	Targets   []Ref                // wait: the containers of the service waited for
}

// Action says what a Change does to a resource.
type Action string

const (
	ActionAdd    Action = "add"
	ActionChange Action = "change"
	ActionRemove Action = "remove"
	ActionPull   Action = "pull"
	ActionWait   Action = "wait"
)

// Change is one line of the human plan; a replace is several Steps and one
// Change.
type Change struct {
	Action Action `json:"action"`
	Type   string `json:"type"` // image, network, volume, container, service
	Name   string `json:"name"`
	Reason string `json:"reason,omitempty"`
	Steps  []int  `json:"steps"`
}

// Plan is the value Compute returns and Apply executes.
type Plan struct {
	Project  string
	Steps    []Step
	Changes  []Change
	Warnings []string
}

// Empty reports whether applying the plan would call the engine at all.
func (p Plan) Empty() bool { return len(p.Steps) == 0 }

var actionSigns = map[Action]string{
	ActionAdd:    "+",
	ActionChange: "~",
	ActionRemove: "-",
	ActionPull:   "↓",
	ActionWait:   "…",
}

// String renders the plan the way terraform does: one line per resource,
// then a summary. Warnings are left to the caller (Plan.Warnings).
func (p Plan) String() string {
	var b strings.Builder
	if p.Empty() {
		fmt.Fprintf(&b, "No changes. Project %s is up to date: nothing to do.\n", p.Project)
	} else {
		for _, c := range p.Changes {
			if c.Action == ActionWait {
				fmt.Fprintf(&b, "%s wait until %s is %s\n", actionSigns[c.Action], c.Name, conditionWords(c.Reason))
				continue
			}
			fmt.Fprintf(&b, "%s %s %s", actionSigns[c.Action], c.Type, c.Name)
			if c.Reason != "" {
				fmt.Fprintf(&b, " (%s)", c.Reason)
			}
			b.WriteByte('\n')
		}
		b.WriteString("\n" + p.Summary() + "\n")
	}
	return b.String()
}

// Destructive returns the changes that lose data (named volumes removed),
// for the CLI to confirm; the planner never prompts.
func (p Plan) Destructive() []Change {
	var out []Change
	for _, c := range p.Changes {
		if c.Action == ActionRemove && c.Type == "volume" {
			out = append(out, c)
		}
	}
	return out
}

// Counts tallies the Changes by action.
func (p Plan) Counts() map[Action]int {
	n := map[Action]int{}
	for _, c := range p.Changes {
		n[c.Action]++
	}
	return n
}

// Summary is the "Plan: 1 to add, 1 to change, 1 to remove." line.
func (p Plan) Summary() string {
	n := p.Counts()
	pull := ""
	if n[ActionPull] > 0 {
		pull = fmt.Sprintf("%d to pull, ", n[ActionPull])
	}
	return fmt.Sprintf("Plan: %s%d to add, %d to change, %d to remove.",
		pull, n[ActionAdd], n[ActionChange], n[ActionRemove])
}

// Graph renders every Step with what it waits for, one per line:
// "#3 start-container demo-web-1 [#2] <- #1 #2". Tests use it to see order.
func (p Plan) Graph() string {
	var b strings.Builder
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "#%d %s %s", s.ID, s.Kind, s.Resource)
		if arg := s.arg(); arg != "" {
			fmt.Fprintf(&b, " [%s]", arg)
		}
		if len(s.Waits) > 0 {
			b.WriteString(" <-")
			for _, w := range s.Waits {
				fmt.Fprintf(&b, " #%d", w)
			}
		}
		if len(s.After) > 0 {
			b.WriteString(" after")
			for _, w := range s.After {
				fmt.Fprintf(&b, " #%d", w)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// arg is the Step's operand worth showing beside its resource.
func (s Step) arg() string {
	switch s.Kind {
	case KindCreateContainer:
		if s.Container.Name != s.Resource {
			return "as " + s.Container.Name
		}
	case KindStartContainer, KindStopContainer, KindRemoveContainer:
		return s.Target.String()
	case KindRenameContainer:
		return s.Target.String() + " -> " + s.Name
	case KindWait:
		refs := make([]string, len(s.Targets))
		for i, r := range s.Targets {
			refs[i] = r.String()
		}
		return s.Condition + " " + strings.Join(refs, " ")
	case KindPullImage:
		return string(s.Pull)
	}
	return ""
}

// conditionWords turns a depends_on condition into words.
func conditionWords(c string) string {
	switch c {
	case "service_healthy":
		return "healthy"
	case "service_completed_successfully":
		return "completed successfully"
	}
	return strings.TrimPrefix(c, "service_")
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
