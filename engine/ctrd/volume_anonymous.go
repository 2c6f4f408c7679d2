package ctrd

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/stackdev/stack/engine"
)

// nameAnonymousVolumes gives each anonymous volume mount of spec a name:
// the volume the container it replaces had at the same target, as compose
// keeps anonymous volumes across a recreate, else a new volume of the
// project. The names are stored with the spec, so the container's volumes
// are observed and its own replacement finds them.
func (c *Client) nameAnonymousVolumes(ctx context.Context, spec *engine.ContainerSpec) error {
	var inherited map[string]string
	for i, m := range spec.Mounts {
		if m.Type != engine.MountVolume || m.Source != "" {
			continue
		}
		if inherited == nil {
			spec.Mounts = slices.Clone(spec.Mounts) // the caller's stays as given
			var err error
			if inherited, err = c.predecessorVolumes(ctx, *spec); err != nil {
				return err
			}
		}
		if name := inherited[m.Target]; name != "" {
			spec.Mounts[i].Source = name
			continue
		}
		rec, err := c.ensureVolume(ctx, "", spec.Project)
		if err != nil {
			return fmt.Errorf("anonymous volume %s: %w", m.Target, err)
		}
		spec.Mounts[i].Source = rec.Name
	}
	return nil
}

// predecessorVolumes maps target → anonymous volume for the containers
// that hold the spec's replica slot now (project, service and number).
func (c *Client) predecessorVolumes(ctx context.Context, spec engine.ContainerSpec) (map[string]string, error) {
	out := map[string]string{}
	if spec.OneOff || spec.Number == 0 || spec.Project == "" {
		return out, nil
	}
	filter := fmt.Sprintf("labels.%q==%s,labels.%q==%s,labels.%q==%s",
		engine.LabelProject, strconv.Quote(spec.Project), engine.LabelService, strconv.Quote(spec.Service),
		engine.LabelNumber, strconv.Quote(strconv.Itoa(spec.Number)))
	list, err := c.ctr.ContainerService().List(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("find the container %s replaces: %w", spec.Name, err)
	}
	for _, info := range list {
		old, err := specOfInfo(info) // the list has the records whole
		if err != nil {
			continue // no stack spec: nothing to take over
		}
		for _, m := range old.Mounts {
			if m.Type == engine.MountVolume && m.Source != "" && out[m.Target] == "" && c.anonymous(m.Source) {
				out[m.Target] = m.Source
			}
		}
	}
	return out, nil
}

// anonymous reports whether the volume was made for an anonymous mount:
// it belongs to a project but was not declared (no key, no config hash).
func (c *Client) anonymous(name string) bool {
	rec, err := c.loadVolume(name)
	return err == nil && rec.Project != "" && rec.Key == "" && rec.ConfigHash == ""
}
