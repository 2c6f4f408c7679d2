package ctrd

import (
	"context"
	"fmt"
	"os"
	"time"

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
// with its network set up anew (the old attachments are deleted first, so
// no netns, veth or address lease is left behind). Under the container's
// lock it checks again that the user has not stopped it meanwhile and that
// no task runs: started says whether it started one. A container removed
// meanwhile is not an error. The run record counts the restart.
func (c *Client) AutoRestart(ctx context.Context, id string) (started bool, retErr error) {
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
	return c.startTask(ctx, id, func(rr *runRecord) { rr.RestartCount++ })
}
