package ctrd

import (
	"context"
	"fmt"
	"os"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
)

// userStopFile marks, in the container's state directory, that the user
// stopped or killed it: the daemon reads it before every restart, and it
// survives the daemon, containerd and the host restarting. Only a start by
// the user removes it.
const userStopFile = "user-stopped"

func (c *Client) userStopPath(id string) string { return c.containerDir(id, userStopFile) }

// markUserStop records that the user stopped the container, how (stop,
// kill) and when.
func (c *Client) markUserStop(id, how string) error {
	if err := os.MkdirAll(c.containerDir(id), 0o700); err != nil {
		return fmt.Errorf("record the user stop: %w", err)
	}
	line := how + " " + time.Now().UTC().Format(time.RFC3339Nano) + "\n"
	if err := os.WriteFile(c.userStopPath(id), []byte(line), 0o600); err != nil {
		return fmt.Errorf("record the user stop: %w", err)
	}
	return nil
}

func (c *Client) clearUserStop(id string) error {
	if err := removeIfExists(c.userStopPath(id)); err != nil {
		return fmt.Errorf("container %s: clear the user stop: %w", id, err)
	}
	return nil
}

// UserStopped reports whether the user stopped or killed container id
// since it was last started by the user.
func (c *Client) UserStopped(id string) bool {
	_, err := os.Stat(c.userStopPath(id))
	return err == nil
}

// AutoRestart starts container id's task again for its restart policy,
// after delay (the backoff), with its network set up anew. Right away, it
// deletes the exited task and detaches the network (CNI DEL, netns
// removed), so that no address is held during the backoff and nothing of
// the old run is left behind; the exit stays recorded in the run record.
// Before each step, under the container's lock, it checks that the user
// has not stopped the container meanwhile and that no task runs: started
// says whether it started one. A container removed meanwhile is not an
// error. The run record counts the restart.
func (c *Client) AutoRestart(ctx context.Context, id string, delay time.Duration) (started bool, err error) {
	if ok, err := c.restartStep(ctx, id, c.clearExited); !ok || err != nil {
		return false, err
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-t.C:
	}
	return c.restartStep(ctx, id, func(ctx context.Context, id string) (bool, error) {
		return c.startTask(ctx, id, func(rr *runRecord) { rr.RestartCount++ })
	})
}

// restartStep runs step under the container's lock, unless the container
// is gone or the user stopped it.
func (c *Client) restartStep(ctx context.Context, id string, step func(context.Context, string) (bool, error)) (bool, error) {
	unlock, err := c.lockContainer(ctx, id)
	if err != nil {
		return false, err
	}
	defer unlock()
	if _, err := c.ctr.ContainerService().Get(ctx, id); errdefs.IsNotFound(err) {
		return false, removeIfExists(c.containerLock(id))
	} else if err != nil {
		return false, fmt.Errorf("restart container %s: %w", id, err)
	}
	if c.UserStopped(id) {
		return false, nil
	}
	return step(ctx, id)
}

// clearExited deletes an exited task, recording its exit, or a task left
// created by an interrupted start, and tears its network down. ok is false
// when a task runs (nothing to restart).
func (c *Client) clearExited(ctx context.Context, id string) (ok bool, err error) {
	ctr, err := c.ctr.LoadContainer(ctx, id)
	if err != nil {
		return false, fmt.Errorf("restart container %s: %w", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return true, c.teardownNetwork(ctx, id)
	} else if err != nil {
		return false, fmt.Errorf("restart container %s: %w", id, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return false, fmt.Errorf("restart container %s: %w", id, err)
	}
	switch st.Status {
	case containerd.Stopped:
	case containerd.Created:
		// Left by a start that was interrupted (the daemon killed while
		// the task was created and CNI ADD ran): it never ran, so there
		// is no exit to record.
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return false, fmt.Errorf("restart container %s: delete the task an interrupted start left: %w", id, err)
		}
		return true, c.teardownNetwork(ctx, id)
	default:
		return false, nil // a task runs
	}
	if err := c.recordExit(id, st); err != nil {
		return false, err
	}
	if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return false, fmt.Errorf("restart container %s: delete the exited task: %w", id, err)
	}
	return true, c.teardownNetwork(ctx, id)
}

// recordExit writes to the run record how the run of an exited task ended,
// before the task is deleted (stop, a start's reuse, a restart's clear all
// do): a container whose record shows a run going on and which has no task
// looks like one whose task was lost with containerd, and an observation
// between the delete and the record would see exactly that.
func (c *Client) recordExit(id string, st containerd.Status) error {
	rr, err := c.loadRun(id)
	if err != nil {
		return err
	}
	rr.Exited, rr.ExitCode, rr.FinishedAt, rr.Proc = true, int(st.ExitStatus), st.ExitTime.UTC(), nil
	return c.saveRun(id, rr)
}

// CancelRestart records the user's stop of a container that has no running
// task, such as one waiting for its restart policy's backoff: the daemon no
// longer starts it, as after stop or kill.
func (c *Client) CancelRestart(ctx context.Context, id string) error {
	unlock, err := c.lockContainer(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := c.ctr.ContainerService().Get(ctx, id); err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	return c.markUserStop(id, "kill")
}
