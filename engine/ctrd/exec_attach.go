package ctrd

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
)

// AttachOptions connect a container's stdio to the caller, for an
// interactive one-off container (`stack run` on a terminal).
type AttachOptions struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer // unused with a TTY: the terminal carries both
	// Resize delivers terminal sizes (columns, rows), with a TTY.
	Resize <-chan [2]uint16
}

// StartAttached starts container id as StartContainer does, but with its
// stdio connected to opts through FIFOs instead of the logging binary (the
// 1.6 shim gives a task that logs through a binary no stdin); its output is
// appended to the json-file log too. The terminal follows the container's
// spec (tty). Without a TTY, the end of opts.Stdin closes the task's stdin.
// It returns a function that waits for the task to exit and returns its exit
// code once all its output is copied.
func (c *Client) StartAttached(ctx context.Context, id string, opts AttachOptions) (wait func() (int, error), retErr error) {
	unlock, err := c.lockContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctr, err := c.ctr.LoadContainer(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("start container %s: %w", id, err)
	}
	spec, err := c.loadSpec(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("start container %s: %w", id, err)
	}
	if err := c.checkJoinedNetNS(ctx, spec); err != nil {
		return nil, fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	if done, err := c.reuseTask(ctx, ctr); done || err != nil {
		if err == nil {
			err = fmt.Errorf("start container %s: it is already running: attach is only for a new task", spec.Name)
		}
		return nil, err
	}
	rr, err := c.loadRun(id)
	if err != nil {
		return nil, fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	defer func() {
		if retErr != nil {
			_ = c.teardownNetwork(context.WithoutCancel(ctx), id)
		}
	}()
	if err := c.setupNetwork(ctx, id, spec, &rr); err != nil {
		return nil, fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	var stdinEOF <-chan struct{}
	if opts.Stdin != nil && !spec.Process.TTY {
		r := &eofReader{r: opts.Stdin, done: make(chan struct{})}
		opts.Stdin, stdinEOF = r, r.done
	}
	logs, err := c.openAttachLog(id, spec)
	if err != nil {
		return nil, fmt.Errorf("start container %s: service %s: %w", spec.Name, spec.Service, err)
	}
	defer func() {
		if retErr != nil {
			_ = logs.Close()
		}
	}()
	opts.Stdout, opts.Stderr = logs.tee("stdout", opts.Stdout), logs.tee("stderr", opts.Stderr)
	task, exitC, err := c.newAttachedTask(ctx, ctr, opts, spec.Process.TTY)
	if err != nil {
		return nil, fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	rr.StartedAt, rr.FinishedAt, rr.ExitCode, rr.Exited = time.Now().UTC(), time.Time{}, 0, false
	rr.Proc = c.host.identify(task.Pid(), id, c.host.bootID())
	if err := c.saveRun(id, rr); err != nil {
		_, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return nil, err
	}
	if stdinEOF != nil {
		go closeStdinAtEOF(ctx, task, stdinEOF)
	}
	if spec.Process.TTY && opts.Resize != nil {
		go forwardResize(ctx, task, opts.Resize)
	}
	return func() (int, error) {
		select {
		case st := <-exitC:
			task.IO().Wait()
			_ = task.IO().Close()
			_ = logs.Close()
			code, _, err := st.Result()
			return int(code), err
		case <-ctx.Done():
			_ = logs.Close()
			return 0, ctx.Err()
		}
	}, nil
}

// newAttachedTask creates the task with its stdio on FIFOs connected to
// opts, subscribes to its exit and starts it; on failure the task is gone.
func (c *Client) newAttachedTask(ctx context.Context, ctr containerd.Container, opts AttachOptions, tty bool) (containerd.Task, <-chan containerd.ExitStatus, error) {
	creator, err := c.attachIO(opts, tty)
	if err != nil {
		return nil, nil, err
	}
	task, err := ctr.NewTask(ctx, creator)
	if err != nil {
		return nil, nil, err
	}
	exitC, err := task.Wait(ctx)
	if err == nil {
		err = task.Start(ctx)
	}
	if err != nil {
		_, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return nil, nil, err
	}
	return task, exitC, nil
}

func (c *Client) attachIO(opts AttachOptions, tty bool) (cio.Creator, error) {
	dir := c.stateDir(dirFIFO)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cioOpts := []cio.Opt{cio.WithFIFODir(dir)}
	if tty {
		cioOpts = append(cioOpts, cio.WithStreams(opts.Stdin, opts.Stdout, nil), cio.WithTerminal)
	} else {
		cioOpts = append(cioOpts, cio.WithStreams(opts.Stdin, opts.Stdout, opts.Stderr))
	}
	return cio.NewCreator(cioOpts...), nil
}
