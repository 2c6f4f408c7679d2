package enginetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
)

// CreateContainer records a created container. Its image, networks and
// volumes must exist; its name must be free.
func (f *Fake) CreateContainer(ctx context.Context, spec engine.ContainerSpec) (string, error) {
	if err := f.before(ctx, "CreateContainer", spec.Name, ""); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byNameLocked(spec.Name) != nil {
		return "", fmt.Errorf("container %s: %w", spec.Name, errdefs.ErrAlreadyExists)
	}
	digest, ok := f.images[spec.Image]
	if !ok {
		return "", fmt.Errorf("container %s: image %s: %w", spec.Name, spec.Image, errdefs.ErrNotFound)
	}
	c := engine.Container{
		Name: spec.Name, Project: spec.Project, Service: spec.Service, Number: spec.Number, OneOff: spec.OneOff,
		ConfigHash: spec.ConfigHash, Image: spec.Image, ImageID: digest,
		Command: strings.Join(append(slices.Clone(spec.Process.Entrypoint), spec.Process.Command...), " "),
		Labels:  containerLabels(spec), Status: engine.StatusCreated, CreatedAt: f.now(),
		Ports: slices.Clone(spec.Network.Ports),
	}
	if err := f.attachLocked(&c, spec); err != nil {
		return "", err
	}
	f.seq++
	sum := sha256.Sum256([]byte(fmt.Sprintf("fake-container-%d", f.seq)))
	c.ID = hex.EncodeToString(sum[:])
	f.record("CreateContainer", spec.Name, c.ID)
	f.containers[c.ID] = &c
	return c.ID, nil
}

// attachLocked fills the container's networks and volumes from the spec,
// checking they exist, as does the container whose namespace it joins.
func (f *Fake) attachLocked(c *engine.Container, spec engine.ContainerSpec) error {
	if parent, ok := strings.CutPrefix(spec.Network.Mode, "container:"); ok && f.byNameLocked(parent) == nil {
		return fmt.Errorf("container %s: network_mode container %s: %w", spec.Name, parent, errdefs.ErrNotFound)
	}
	if spec.Network.Mode == "" || spec.Network.Mode == "bridge" {
		for _, n := range spec.Network.Networks {
			if _, ok := f.networks[n.Network]; !ok {
				return fmt.Errorf("container %s: network %s: %w", spec.Name, n.Network, errdefs.ErrNotFound)
			}
			c.Networks = append(c.Networks, n.Network)
		}
	}
	for _, m := range spec.Mounts {
		if m.Type != engine.MountVolume || m.Source == "" {
			continue
		}
		if _, ok := f.volumes[m.Source]; !ok {
			return fmt.Errorf("container %s: volume %s: %w", spec.Name, m.Source, errdefs.ErrNotFound)
		}
		c.Volumes = append(c.Volumes, m.Source)
	}
	return nil
}

// StartContainer runs the container; starting a running one does nothing.
func (f *Fake) StartContainer(ctx context.Context, id string) error {
	return f.withContainer(ctx, "StartContainer", id, func(c *engine.Container) error {
		if c.Status == engine.StatusRunning {
			return nil
		}
		c.Status, c.StartedAt, c.Pid, c.ExitCode = engine.StatusRunning, f.now(), 1000+len(f.calls), 0
		return nil
	})
}

// StopContainer stops the container; stopping a stopped or missing one does
// nothing.
func (f *Fake) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	if f.nameOf(id) == "" {
		return f.before(ctx, "StopContainer", "", id)
	}
	return f.withContainer(ctx, "StopContainer", id, func(c *engine.Container) error {
		if c.Status == engine.StatusRunning || c.Status == engine.StatusPaused {
			c.Status, c.Pid, c.ExitCode = engine.StatusExited, 0, 137
		}
		return nil
	})
}

// RenameContainer gives the container a free name.
func (f *Fake) RenameContainer(ctx context.Context, id, name string) error {
	return f.withContainer(ctx, "RenameContainer", id, func(c *engine.Container) error {
		if other := f.byNameLocked(name); other != nil && other != c {
			return fmt.Errorf("rename container %s to %s: %w", c.Name, name, errdefs.ErrAlreadyExists)
		}
		c.Name = name
		c.Labels[engine.LabelName] = name
		return nil
	})
}

// RemoveContainer removes a stopped container; a missing one is not an
// error, a running one is refused.
func (f *Fake) RemoveContainer(ctx context.Context, id string) error {
	if err := f.before(ctx, "RemoveContainer", f.nameOf(id), id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return nil
	}
	if c.Status == engine.StatusRunning || c.Status == engine.StatusPaused {
		return fmt.Errorf("remove container %s: it is %s, stop it first: %w", c.Name, c.Status, errdefs.ErrFailedPrecondition)
	}
	f.record("RemoveContainer", c.Name, id)
	delete(f.containers, id)
	return nil
}

// withContainer runs change on container id under the lock; a missing
// container is ErrNotFound.
func (f *Fake) withContainer(ctx context.Context, method, id string, change func(*engine.Container) error) error {
	if err := f.before(ctx, method, f.nameOf(id), id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
	}
	name := c.Name
	if err := change(c); err != nil {
		return err
	}
	f.record(method, name, id)
	return nil
}

func (f *Fake) nameOf(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[id]; ok {
		return c.Name
	}
	return ""
}

func (f *Fake) byNameLocked(name string) *engine.Container {
	for _, c := range f.containers {
		if c.Name == name {
			return c
		}
	}
	return nil
}
