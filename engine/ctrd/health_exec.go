package ctrd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/anypb"
)

// A healthcheck probe is an exec that needs no stdin, no terminal and only
// the first healthOutputMax bytes of its output, run every second in dozens
// of containers. Exec (and the client's Process) serve users' execs: cio's
// two FIFOs each opened by blocking open(2) calls in goroutines, a Wait
// request in a goroutine, and a Delete preceded by a Wait, a Kill and a Get.
// A probe instead makes three requests to containerd (Exec, Start,
// DeleteProcess) and reads one FIFO, which the shim opens for stdout and
// stderr both, through the runtime's poller:
//
//   - the FIFO is created and opened for reading without blocking before
//     the Exec request; the shim opens it for writing during Start;
//   - the output is read until the shim closes the FIFO, which it does once
//     the process (and whatever holds its stdout) has exited;
//   - DeleteProcess then returns the exit status. When the shim has not yet
//     noted the exit (the output ended first), a Wait request follows.
//
// A probe whose timeout passes is killed and deleted, as Docker does.

// probeCleanup bounds the requests that end a probe after its timeout or
// its failure to start.
const probeCleanup = 10 * time.Second

// runProbe runs the process spec pspec in the task of container id, keeps
// the first max bytes of its output (stdout and stderr, in the order
// written) and returns its exit code. ctx's end kills the process.
func (c *Client) runProbe(ctx context.Context, id string, pspec *anypb.Any, max int) (code int, output []byte, err error) {
	execID := probeExecID()
	f, path, err := c.openProbeFIFO(execID)
	if err != nil {
		return 0, nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer closeProbeFIFO(f, path)
	ts := c.ctr.TaskService()
	if _, err := ts.Exec(ctx, &tasks.ExecProcessRequest{
		ContainerID: id, ExecID: execID, Stdout: path, Stderr: path, Spec: pspec,
	}); err != nil {
		return 0, nil, fmt.Errorf("exec in %s: %w", id, c.taskNotRunning(ctx, id, errgrpc.ToNative(err)))
	}
	if _, err := ts.Start(ctx, &tasks.StartRequest{ContainerID: id, ExecID: execID}); err != nil {
		c.endProbe(ctx, id, execID, false)
		return 0, nil, fmt.Errorf("start exec: %w", errgrpc.ToNative(err))
	}
	output, err = readProbeOutput(ctx, f, max)
	if err != nil {
		c.endProbe(ctx, id, execID, true)
		return 0, output, err
	}
	code, err = c.deleteProbe(ctx, id, execID)
	return code, output, err
}

// deleteProbe removes the exited exec execID and returns its exit code,
// waiting for its exit first when the shim has not noted it yet.
func (c *Client) deleteProbe(ctx context.Context, id, execID string) (int, error) {
	ts := c.ctr.TaskService()
	req := &tasks.DeleteProcessRequest{ContainerID: id, ExecID: execID}
	r, err := ts.DeleteProcess(ctx, req)
	if err == nil {
		return int(r.ExitStatus), nil
	}
	if _, werr := ts.Wait(ctx, &tasks.WaitRequest{ContainerID: id, ExecID: execID}); werr != nil {
		c.endProbe(ctx, id, execID, ctx.Err() != nil)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("wait for exec: %w", errgrpc.ToNative(werr))
	}
	if r, err = ts.DeleteProcess(ctx, req); err != nil {
		return 0, fmt.Errorf("delete exec: %w", errgrpc.ToNative(err))
	}
	return int(r.ExitStatus), nil
}

// endProbe removes exec execID after a failure or a timeout (kill: it may
// still run), within probeCleanup whatever ctx says. Errors are dropped:
// the exec is gone with its task at worst.
func (c *Client) endProbe(ctx context.Context, id, execID string, kill bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeCleanup)
	defer cancel()
	ts := c.ctr.TaskService()
	if kill {
		_, _ = ts.Kill(ctx, &tasks.KillRequest{ContainerID: id, ExecID: execID, Signal: uint32(syscall.SIGKILL), All: true})
		_, _ = ts.Wait(ctx, &tasks.WaitRequest{ContainerID: id, ExecID: execID})
	}
	_, _ = ts.DeleteProcess(ctx, &tasks.DeleteProcessRequest{ContainerID: id, ExecID: execID})
}

// taskNotRunning explains a failed exec by the task's status when the task
// is not running; the status is asked only then.
func (c *Client) taskNotRunning(ctx context.Context, id string, err error) error {
	r, serr := c.ctr.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: id})
	if errdefs.IsNotFound(errgrpc.ToNative(serr)) {
		return fmt.Errorf("the container is not running: start it first: %w", errdefs.ErrFailedPrecondition)
	}
	if serr != nil || r.GetProcess() == nil {
		return err
	}
	st := containerd.ProcessStatus(strings.ToLower(r.GetProcess().GetStatus().String()))
	if st == containerd.Running {
		return err
	}
	return errNotRunning(st)
}

// openProbeFIFO creates the FIFO of exec execID in execFIFODir and opens
// it for reading without blocking, so that no goroutine waits in open(2)
// for the shim; the runtime's poller then watches it.
func (c *Client) openProbeFIFO(execID string) (*os.File, string, error) {
	dir := c.execFIFODir()
	path := filepath.Join(dir, execID)
	err := unix.Mkfifo(path, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			err = unix.Mkfifo(path, 0o600)
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("create the output FIFO: %w", err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(path)
		return nil, "", fmt.Errorf("open the output FIFO: %w", err)
	}
	return os.NewFile(uintptr(fd), path), path, nil
}

func closeProbeFIFO(f *os.File, path string) {
	_ = f.Close()
	_ = os.Remove(path)
}

// probeBuf is the read buffer of a probe's output, reused.
var probeBuf = sync.Pool{New: func() any { b := make([]byte, healthOutputMax); return &b }}

// readProbeOutput reads f until EOF (every writer closed it) or ctx ends,
// keeping the first max bytes. Read only once the shim opened the FIFO:
// before, a read finds no writer and returns EOF.
func readProbeOutput(ctx context.Context, f *os.File, max int) ([]byte, error) {
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	bp := probeBuf.Get().(*[]byte)
	defer probeBuf.Put(bp)
	var kept []byte
	for {
		n, err := f.Read(*bp)
		if room := max - len(kept); n > 0 && room > 0 {
			kept = append(kept, (*bp)[:min(n, room)]...)
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return kept, nil
		case ctx.Err() != nil:
			return kept, ctx.Err()
		default:
			return kept, fmt.Errorf("read the probe's output: %w", err)
		}
	}
}
