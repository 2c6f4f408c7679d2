package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/stackdev/stack/engine"
)

// call makes the step's one engine call. It returns the new container's ID
// for a create, else the container acted on.
func (x *executor) call(ctx context.Context, s Step, target string, targets []string) (string, error) {
	id, err := x.dispatch(ctx, s, target, targets)
	if err != nil {
		return id, fmt.Errorf("%s: %w", s.Describe(), err)
	}
	return id, nil
}

func (x *executor) dispatch(ctx context.Context, s Step, target string, targets []string) (string, error) {
	d := x.d
	switch s.Kind {
	case KindPullImage:
		_, err := d.PullImage(ctx, s.Image, engine.PullOptions{Policy: s.Pull, Progress: x.opts.PullProgress})
		return "", err
	case KindRemoveImage:
		ir, ok := d.(ImageRemover)
		if !ok {
			return "", errors.New("this engine cannot remove images")
		}
		_, err := ir.RemoveImage(ctx, s.Image)
		return "", err
	case KindCreateNetwork:
		return "", d.CreateNetwork(ctx, s.Network)
	case KindRemoveNetwork:
		return "", d.RemoveNetwork(ctx, s.Resource)
	case KindCreateVolume:
		return "", d.CreateVolume(ctx, s.Volume)
	case KindRemoveVolume:
		return "", d.RemoveVolume(ctx, s.Resource)
	case KindCreateContainer:
		return d.CreateContainer(ctx, s.Container)
	case KindStartContainer:
		return target, d.StartContainer(ctx, target)
	case KindStopContainer:
		return target, d.StopContainer(ctx, target, s.Timeout)
	case KindRemoveContainer:
		return target, d.RemoveContainer(ctx, target)
	case KindRenameContainer:
		return target, d.RenameContainer(ctx, target, s.Name)
	case KindWait:
		if x.opts.Wait == nil {
			return "", nil
		}
		return "", x.opts.Wait(ctx, s.Condition, targets)
	}
	return "", fmt.Errorf("unknown step kind %q", s.Kind)
}

// Describe names the step's call for messages: "create container demo-web-1".
func (s Step) Describe() string {
	verb, noun, _ := strings.Cut(string(s.Kind), "-")
	if s.Kind == KindWait {
		return fmt.Sprintf("wait for %s %s", s.Resource, s.Condition)
	}
	return fmt.Sprintf("%s %s %s", verb, noun, s.Resource)
}

// Validate checks what Apply relies on: IDs are positions, waits name other
// steps and form no cycle, and every Ref to a step names a create step that
// the holder waits for.
func (p Plan) Validate() error {
	n := len(p.Steps)
	for i, s := range p.Steps {
		if s.ID != i {
			return fmt.Errorf("invalid plan: step at position %d has ID %d", i, s.ID)
		}
		seen := map[int]bool{}
		for _, w := range slices.Concat(s.Waits, s.After) {
			if w < 0 || w >= n || w == i || seen[w] {
				return fmt.Errorf("invalid plan: step #%d waits for #%d (out of range, itself or twice)", i, w)
			}
			seen[w] = true
		}
		refs := s.Targets
		if usesTarget(s.Kind) {
			refs = append(refs[:len(refs):len(refs)], s.Target)
		}
		for _, r := range refs {
			if err := p.checkRef(s, r); err != nil {
				return err
			}
		}
	}
	return p.checkAcyclic()
}

func (p Plan) checkRef(s Step, r Ref) error {
	if r.ID != "" {
		return nil
	}
	if r.Step < 0 || r.Step >= len(p.Steps) || p.Steps[r.Step].Kind != KindCreateContainer {
		return fmt.Errorf("invalid plan: step #%d refers to #%d, which creates no container", s.ID, r.Step)
	}
	for _, w := range s.Waits {
		if w == r.Step {
			return nil
		}
	}
	return fmt.Errorf("invalid plan: step #%d refers to #%d without waiting for it", s.ID, r.Step)
}

func (p Plan) checkAcyclic() error {
	indeg := make([]int, len(p.Steps))
	dependents := make([][]int, len(p.Steps))
	var ready []int
	for _, s := range p.Steps {
		edges := slices.Concat(s.Waits, s.After)
		indeg[s.ID] = len(edges)
		for _, w := range edges {
			dependents[w] = append(dependents[w], s.ID)
		}
		if len(edges) == 0 {
			ready = append(ready, s.ID)
		}
	}
	seen := 0
	for len(ready) > 0 {
		id := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		seen++
		for _, d := range dependents[id] {
			if indeg[d]--; indeg[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	if seen < len(p.Steps) {
		return errors.New("invalid plan: its steps wait for each other in a cycle")
	}
	return nil
}
