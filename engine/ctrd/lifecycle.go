package ctrd

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/moby/sys/signal"

	"github.com/stackdev/stack/engine"
)

// ErrNotRunning says that a container has no running task to act on.
var ErrNotRunning = errors.New("the container is not running: start it first")

// ParseSignal reads a signal as docker does: SIGKILL, KILL or 9.
func ParseSignal(name string) (syscall.Signal, error) {
	s, err := signal.ParseSignal(name)
	if err != nil {
		return 0, fmt.Errorf("%w: use a name like SIGTERM or KILL, or a number", err)
	}
	return s, nil
}

// KillContainer sends sig to the container's running (or paused) task.
// The task exits on its own terms; the network stays until the next start
// or stop tidies it, as after any exit. As with docker kill, the container
// is marked stopped by the user first, whatever the signal: its restart
// policy no longer applies until the user starts it again.
func (c *Client) KillContainer(ctx context.Context, id string, sig syscall.Signal) error {
	task, st, err := c.liveTask(ctx, id)
	if err != nil {
		return fmt.Errorf("kill container %s: %w", id, err)
	}
	if st != containerd.Running && st != containerd.Paused {
		return fmt.Errorf("kill container %s: %w", id, ErrNotRunning)
	}
	if err := c.markUserStop(id, "kill"); err != nil {
		return fmt.Errorf("kill container %s: %w", id, err)
	}
	if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("kill container %s: send %v: %w", id, sig, err)
	}
	return nil
}

// PauseContainer freezes every process of the container (cgroup freezer).
// A paused container stays paused.
func (c *Client) PauseContainer(ctx context.Context, id string) error {
	task, st, err := c.liveTask(ctx, id)
	if err != nil {
		return fmt.Errorf("pause container %s: %w", id, err)
	}
	switch st {
	case containerd.Paused:
		return nil
	case containerd.Running:
		if err := task.Pause(ctx); err != nil {
			return fmt.Errorf("pause container %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("pause container %s: %w", id, ErrNotRunning)
}

// UnpauseContainer thaws a paused container; a running one is left alone.
func (c *Client) UnpauseContainer(ctx context.Context, id string) error {
	task, st, err := c.liveTask(ctx, id)
	if err != nil {
		return fmt.Errorf("unpause container %s: %w", id, err)
	}
	switch st {
	case containerd.Running:
		return nil
	case containerd.Paused:
		if err := task.Resume(ctx); err != nil {
			return fmt.Errorf("unpause container %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("unpause container %s: %w", id, ErrNotRunning)
}

// AnonymousVolumes lists the anonymous volumes the container mounts, for
// `rm -v` to remove after the container.
func (c *Client) AnonymousVolumes(ctx context.Context, id string) ([]string, error) {
	spec, err := c.loadSpec(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	var out []string
	for _, m := range spec.Mounts {
		if m.Type == engine.MountVolume && m.Source != "" && c.anonymous(m.Source) {
			out = append(out, m.Source)
		}
	}
	return out, nil
}

// liveTask loads the container's task and its status; no task wraps
// ErrNotRunning.
func (c *Client) liveTask(ctx context.Context, id string) (containerd.Task, containerd.ProcessStatus, error) {
	ctr, err := c.ctr.LoadContainer(ctx, id)
	if err != nil {
		return nil, "", err
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, "", ErrNotRunning
	} else if err != nil {
		return nil, "", err
	}
	st, err := task.Status(ctx)
	if err != nil {
		return nil, "", err
	}
	return task, st.Status, nil
}
