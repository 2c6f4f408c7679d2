package enginetest

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
)

// CreateNetwork records a network; a subnet is chosen when none is given.
func (f *Fake) CreateNetwork(ctx context.Context, spec engine.NetworkSpec) error {
	if err := f.before(ctx, "CreateNetwork", spec.Name, ""); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.networks[spec.Name]; ok {
		return fmt.Errorf("network %s: %w", spec.Name, errdefs.ErrAlreadyExists)
	}
	f.record("CreateNetwork", spec.Name, "")
	subnet, gateway := spec.Subnet, spec.Gateway
	if subnet == "" {
		f.subnets++
		subnet = fmt.Sprintf("10.%d.%d.0/24", 200+f.subnets/256, f.subnets%256)
		gateway = fmt.Sprintf("10.%d.%d.1", 200+f.subnets/256, f.subnets%256)
	}
	f.networks[spec.Name] = engine.Network{
		Name: spec.Name, Project: spec.Project, ConfigHash: spec.ConfigHash,
		Subnet: subnet, Gateway: gateway, Bridge: fmt.Sprintf("br-fake%d", len(f.networks)),
		Internal: spec.Internal, Labels: maps.Clone(spec.Labels),
	}
	return nil
}

// RemoveNetwork removes a network no container uses; a missing one is not
// an error.
func (f *Fake) RemoveNetwork(ctx context.Context, name string) error {
	if err := f.before(ctx, "RemoveNetwork", name, ""); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.networks[name]; !ok {
		return nil
	}
	if users := f.usersLocked(func(c *engine.Container) bool { return slices.Contains(c.Networks, name) }); len(users) > 0 {
		return fmt.Errorf("network %s is used by %v: %w", name, users, errdefs.ErrFailedPrecondition)
	}
	f.record("RemoveNetwork", name, "")
	delete(f.networks, name)
	return nil
}

// CreateVolume records a volume.
func (f *Fake) CreateVolume(ctx context.Context, spec engine.VolumeSpec) error {
	if err := f.before(ctx, "CreateVolume", spec.Name, ""); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.volumes[spec.Name]; ok {
		return fmt.Errorf("volume %s: %w", spec.Name, errdefs.ErrAlreadyExists)
	}
	f.record("CreateVolume", spec.Name, "")
	f.volumes[spec.Name] = engine.Volume{
		Name: spec.Name, Project: spec.Project, ConfigHash: spec.ConfigHash,
		Mountpoint: "/fake/volumes/" + spec.Name + "/_data", Labels: maps.Clone(spec.Labels),
	}
	return nil
}

// RemoveVolume removes a volume no container mounts; a missing one is not
// an error.
func (f *Fake) RemoveVolume(ctx context.Context, name string) error {
	if err := f.before(ctx, "RemoveVolume", name, ""); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.volumes[name]; !ok {
		return nil
	}
	if users := f.usersLocked(func(c *engine.Container) bool { return slices.Contains(c.Volumes, name) }); len(users) > 0 {
		return fmt.Errorf("volume %s is used by %v: %w", name, users, errdefs.ErrFailedPrecondition)
	}
	f.record("RemoveVolume", name, "")
	delete(f.volumes, name)
	return nil
}

// usersLocked names the containers matching use, sorted.
func (f *Fake) usersLocked(use func(*engine.Container) bool) []string {
	var names []string
	for _, c := range f.containers {
		if use(c) {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	return names
}
