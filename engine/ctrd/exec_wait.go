package ctrd

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
)

// WaitContainer blocks until the task of container id exits and returns
// its exit code. A container whose task is gone reports the exit code its
// run record kept.
func (c *Client) WaitContainer(ctx context.Context, id string) (int, error) {
	ctr, err := c.ctr.LoadContainer(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("wait for container %s: %w", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		rr, err := c.loadRun(id)
		if err != nil {
			return 0, fmt.Errorf("wait for container %s: %w", id, err)
		}
		return rr.ExitCode, nil
	} else if err != nil {
		return 0, fmt.Errorf("wait for container %s: %w", id, err)
	}
	exitC, err := task.Wait(ctx)
	if err != nil {
		return 0, fmt.Errorf("wait for container %s: %w", id, err)
	}
	select {
	case st := <-exitC:
		code, _, err := st.Result()
		if err != nil {
			return 0, fmt.Errorf("wait for container %s: %w", id, err)
		}
		return int(code), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
