package ctrd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/moby/sys/signal"

	"github.com/stackdev/stack/engine"
)

// defaultStopTimeout is Docker's grace period between the stop signal and
// SIGKILL.
const defaultStopTimeout = 10 * time.Second

// killWait bounds the wait for a task to die after SIGKILL.
const killWait = 10 * time.Second

// StartContainer creates the network namespace, attaches the container to
// its networks in priority order, then creates and starts the task. A
// running container is left alone; an exited one is started again. A start
// by the user clears the user-stop mark and the restart count.
func (c *Client) StartContainer(ctx context.Context, id string) error {
	unlock, err := c.lockContainer(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := c.startTask(ctx, id, func(rr *runRecord) { rr.RestartCount = 0 }); err != nil {
		return err
	}
	return c.clearUserStop(id)
}

// startTask starts container id's task (the caller holds its lock): the
// exited task and its network are torn down (CNI DEL, netns removed), the
// network set up anew (netns, CNI ADD) and a new task started. onStart
// updates the run record saved once the task runs. started is false when a
// task was already running.
func (c *Client) startTask(ctx context.Context, id string, onStart func(*runRecord)) (started bool, retErr error) {
	ctr, err := c.ctr.LoadContainer(ctx, id)
	if err != nil {
		return false, fmt.Errorf("start container %s: %w", id, err)
	}
	spec, err := loadedSpec(ctx, ctr)
	if err != nil {
		return false, fmt.Errorf("start container %s: %w", id, err)
	}
	if err := c.checkJoinedNetNS(ctx, spec); err != nil {
		return false, fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	if done, err := c.reuseTask(ctx, ctr); done || err != nil {
		return false, err
	}
	rr, err := c.loadRun(id)
	if err != nil {
		return false, fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	defer func() {
		if retErr != nil {
			_ = c.teardownNetwork(context.WithoutCancel(ctx), id)
		}
	}()
	if err := c.prepareNetwork(id, spec, &rr); err != nil {
		return false, fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	// CNI ADD and the task's creation (the shim, the logging binary, runc
	// create) do not need each other; each takes tens of milliseconds. Only
	// the start waits for both, so the process sees its network at once.
	attached := make(chan error, 1)
	go func() { attached <- c.attachNetworks(ctx, id, spec, &rr) }()
	task, err := ctr.NewTask(ctx, c.taskIO(id, spec))
	if netErr := <-attached; netErr != nil {
		if err == nil {
			_, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		}
		return false, fmt.Errorf("start container %s: %w", spec.Name, netErr)
	}
	if err != nil {
		return false, fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	// The init process exists from the task's creation and keeps its PID
	// and start time through its exec: read them before it can exit.
	proc := c.host.identify(task.Pid(), id, c.host.bootID())
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return false, fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	rr.StartedAt, rr.FinishedAt, rr.ExitCode, rr.Exited = time.Now().UTC(), time.Time{}, 0, false
	rr.Proc = proc
	onStart(&rr)
	return true, c.saveRun(id, rr)
}

// checkJoinedNetNS makes sure that the container whose network this one
// shares (network_mode container:NAME) runs with a network of its own.
func (c *Client) checkJoinedNetNS(ctx context.Context, spec engine.ContainerSpec) error {
	name, ok := strings.CutPrefix(spec.Network.Mode, "container:")
	if !ok {
		return nil
	}
	target, err := c.containerByName(ctx, name)
	if err != nil {
		return fmt.Errorf("network_mode %s: %w", spec.Network.Mode, err)
	}
	if !netnsExists(netnsPath(target)) {
		return fmt.Errorf("network_mode %s: %s is not running with a network of its own: start it first: %w", spec.Network.Mode, name, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// reuseTask looks at an existing task: a running one means done; an exited
// one, or a created one (left by a start that was interrupted, maybe while
// CNI ADD still ran), is deleted with its network so a new run can begin.
func (c *Client) reuseTask(ctx context.Context, ctr containerd.Container) (bool, error) {
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return false, c.teardownNetwork(ctx, ctr.ID())
	} else if err != nil {
		return false, fmt.Errorf("start container %s: %w", ctr.ID(), err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return false, fmt.Errorf("start container %s: %w", ctr.ID(), err)
	}
	switch st.Status {
	case containerd.Running:
		return true, nil
	case containerd.Paused:
		return true, task.Resume(ctx)
	}
	if st.Status == containerd.Stopped {
		// While the new run starts, the container shows this exit.
		if err := c.recordExit(ctr.ID(), st); err != nil {
			return false, fmt.Errorf("start container %s: %w", ctr.ID(), err)
		}
	}
	if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return false, fmt.Errorf("start container %s: delete exited task: %w", ctr.ID(), err)
	}
	return false, c.teardownNetwork(ctx, ctr.ID())
}

// LogPath is the container's json-file log, written by the logging binary
// (rotated files are LogPath.1, LogPath.2, …).
func (c *Client) LogPath(id string) string { return c.containerDir(id, id+"-json.log") }

// taskIO is where the task's output goes: nowhere for the "none" log driver,
// else the json-file logging binary. A stdin_open task without a tty gets
// FIFOs held open by its io holder (iohold.go).
func (c *Client) taskIO(id string, spec engine.ContainerSpec) cio.Creator {
	if spec.Process.StdinOpen && !spec.Process.TTY {
		return c.heldIO(id, spec)
	}
	if spec.Logging.Driver == "none" {
		return cio.NullIO
	}
	return c.jsonLogIO(id, spec)
}

type fileIO struct{ cfg cio.Config }

func (f *fileIO) Config() cio.Config { return f.cfg }
func (f *fileIO) Cancel()            {}
func (f *fileIO) Wait()              {}
func (f *fileIO) Close() error       { return nil }

// StopContainer sends the stop signal, waits up to timeout, kills, deletes
// the task, then detaches the networks and removes the netns. It is
// idempotent and finishes what an interrupted call left.
func (c *Client) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	unlock, err := c.lockContainer(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	ctr, err := c.loadIfExists(ctx, id)
	if err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	if err := c.stopLoaded(ctx, id, ctr, timeout); err != nil {
		return err
	}
	if ctr == nil {
		// Removed already: do not leave the lock file behind.
		return removeIfExists(c.containerLock(id))
	}
	return nil
}

// loadIfExists loads a container: nil, and no error, when it does not
// exist.
func (c *Client) loadIfExists(ctx context.Context, id string) (containerd.Container, error) {
	ctr, err := c.ctr.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	return ctr, err
}

// lockContainer serialises Start, Stop and Remove of one container across
// goroutines and processes: each reads and rewrites the run record and the
// netns, and two at once would undo each other's steps.
func (c *Client) lockContainer(ctx context.Context, id string) (func(), error) {
	unlock, err := lockFile(ctx, c.containerLock(id), nil)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	return unlock, nil
}

func (c *Client) containerLock(id string) string {
	return c.stateDir("locks", "containers", id+".lock")
}

// stopLoaded marks a loaded container stopped by the user before it
// signals the task, so that the daemon never restarts it for its policy,
// then releases its network. ctr is nil when the container no longer
// exists, and only its network is released.
func (c *Client) stopLoaded(ctx context.Context, id string, ctr containerd.Container, timeout time.Duration) error {
	released := false
	if ctr != nil {
		if err := c.markUserStop(id, "stop"); err != nil {
			return fmt.Errorf("stop container %s: %w", id, err)
		}
		var err error
		if released, err = c.stopTask(ctx, ctr, timeout); err != nil {
			return fmt.Errorf("stop container %s: %w", id, err)
		}
	}
	if released {
		return nil
	}
	if err := c.teardownNetwork(ctx, id); err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	return nil
}

// stopTask stops and deletes the container's task, if it has one, and
// says whether it released the container's network on the way. The
// timeout is the caller's; the spec's stop_grace_period applies when it is
// not set (gracePeriod).
func (c *Client) stopTask(ctx context.Context, ctr containerd.Container, timeout time.Duration) (networkReleased bool, err error) {
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	spec, _ := loadedSpec(ctx, ctr)
	ended, err := signalAndWait(ctx, task, stopSignal(spec), gracePeriod(spec, timeout))
	if err != nil {
		return false, err
	}
	if err := c.recordExit(ctr.ID(), ended); err != nil {
		return false, err
	}
	// The task has exited: its network goes (CNI DEL) while containerd
	// deletes it (the shim waits for the logging binary to drain); neither
	// needs the other. The run record is the network's until it is done.
	detached := make(chan error, 1)
	go func() { detached <- c.teardownNetwork(ctx, ctr.ID()) }()
	err = c.deleteExitedTask(ctx, task, ended, exitedDeleteOpts(spec))
	if netErr := <-detached; netErr != nil {
		return false, netErr
	}
	if err != nil && !errdefs.IsNotFound(err) {
		return true, fmt.Errorf("delete task: %w", err)
	}
	return true, nil
}

// deleteExitedTask deletes a task after signalAndWait. A task seen stopped
// is deleted with one call: the client's Task.Delete would first ask for
// its status again (a round trip through containerd to the shim, about
// 0.6 ms of CPU), only to find it stopped. Any other case, and any option,
// takes the client's way.
func (c *Client) deleteExitedTask(ctx context.Context, task containerd.Task, ended containerd.Status, opts []containerd.ProcessDeleteOpts) error {
	if ended.Status != containerd.Stopped || len(opts) > 0 {
		_, err := task.Delete(ctx, opts...)
		return err
	}
	_, err := c.ctr.TaskService().Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: task.ID()})
	return errgrpc.ToNative(err)
}

// exitedDeleteOpts are the options to delete a task whose init process has
// exited. In its own PID namespace nothing outlives init (the kernel kills
// the rest), so the delete needs no kill of every process, which is one
// more runc run per container (about 6 ms of CPU each). Sharing the host's
// or another container's, orphans can outlive init; runc's delete kills
// what is left in the cgroup, and the kill of every process first keeps
// that so whatever the runtime.
func exitedDeleteOpts(spec engine.ContainerSpec) []containerd.ProcessDeleteOpts {
	if spec.Security.PID == "" {
		return nil
	}
	return []containerd.ProcessDeleteOpts{containerd.WithProcessKill}
}

// signalAndWait sends sig to a live task and waits up to timeout for it to
// exit, then sends SIGKILL and waits again (bounded). ended is how the
// task ended, for its run record: its exit, or, for a task created and
// never started, its status as it was.
func signalAndWait(ctx context.Context, task containerd.Task, sig syscall.Signal, timeout time.Duration) (ended containerd.Status, err error) {
	st, err := task.Status(ctx)
	if err != nil {
		return st, err
	}
	if st.Status == containerd.Stopped || st.Status == containerd.Created {
		return st, nil
	}
	if st.Status == containerd.Paused {
		_ = task.Resume(ctx)
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	exited, err := task.Wait(waitCtx)
	if err != nil {
		return st, err
	}
	stopped := func(es containerd.ExitStatus) containerd.Status {
		return containerd.Status{Status: containerd.Stopped, ExitStatus: es.ExitCode(), ExitTime: es.ExitTime()}
	}
	if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
		return st, fmt.Errorf("send %v: %w", sig, err)
	}
	if sig != syscall.SIGKILL {
		select {
		case es := <-exited:
			return stopped(es), nil
		case <-time.After(timeout):
		case <-ctx.Done():
			return st, ctx.Err()
		}
		// Only when the stop signal was another: each kill is a run of
		// runc.
		if err := task.Kill(ctx, syscall.SIGKILL); err != nil && !errdefs.IsNotFound(err) {
			return st, fmt.Errorf("send SIGKILL: %w", err)
		}
	}
	select {
	case es := <-exited:
		return stopped(es), nil
	case <-time.After(killWait):
		return st, errors.New("the task did not exit within 10s of SIGKILL")
	case <-ctx.Done():
		return st, ctx.Err()
	}
}

// gracePeriod is how long to wait after the stop signal: the caller's
// timeout, else the service's stop_grace_period, else Docker's 10s. A
// negative timeout (-t 0) kills right after the signal.
func gracePeriod(spec engine.ContainerSpec, timeout time.Duration) time.Duration {
	switch {
	case timeout < 0:
		return 0
	case timeout > 0:
		return timeout
	case spec.Process.StopGracePeriod > 0:
		return spec.Process.StopGracePeriod
	}
	return defaultStopTimeout
}

// stopSignal is the spec's stop_signal, SIGTERM by default.
func stopSignal(spec engine.ContainerSpec) syscall.Signal {
	if spec.Process.StopSignal != "" {
		if s, err := signal.ParseSignal(spec.Process.StopSignal); err == nil {
			return s
		}
	}
	return syscall.SIGTERM
}
