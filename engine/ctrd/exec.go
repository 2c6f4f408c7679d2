package ctrd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExecOptions say what Exec runs in a container and where its streams go.
type ExecOptions struct {
	Args       []string
	Env        []string // KEY=VALUE, added to (and overriding) the container's
	User       string   // user[:group], names or IDs; "" keeps the container's
	WorkingDir string   // "" keeps the container's
	Privileged bool
	// TTY gives the process a terminal: its output comes on Stdout alone.
	TTY bool
	// Detach starts the process and returns at once, with exit code 0.
	Detach bool
	Stdin  io.Reader // nil: no stdin
	Stdout io.Writer
	Stderr io.Writer
	// Resize, with TTY, delivers terminal sizes (columns, rows) to apply.
	Resize <-chan [2]uint16
}

// dirFIFO holds attached runs' FIFOs (and exec FIFOs when no tmpfs is
// found, see execFIFODir), under the state directory rather than
// containerd's /run/containerd/fifo.
const dirFIFO = "fifo"

// Exec runs a process in the running container id and returns its exit
// code. The process gets the container's environment, user and working
// directory unless opts change them.
func (c *Client) Exec(ctx context.Context, id string, opts ExecOptions) (int, error) {
	if len(opts.Args) == 0 {
		return 0, fmt.Errorf("exec in %s: no command given", id)
	}
	task, pspec, err := c.execTarget(ctx, id, opts)
	if err != nil {
		return 0, err
	}
	return c.execIn(ctx, id, task, pspec.Process, opts)
}

// execTarget loads the task of container id and the process spec opts
// make of the container's.
func (c *Client) execTarget(ctx context.Context, id string, opts ExecOptions) (containerd.Task, *oci.Spec, error) {
	ctr, err := c.ctr.LoadContainer(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil, fmt.Errorf("exec in %s: the container is not running: start it first: %w", id, errdefs.ErrFailedPrecondition)
		}
		return nil, nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	pspec, err := c.execSpec(ctx, ctr, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	return task, pspec, nil
}

// execIn runs process in task with opts' streams and returns its exit code.
func (c *Client) execIn(ctx context.Context, id string, task containerd.Task, process *specs.Process, opts ExecOptions) (int, error) {
	var stdinEOF <-chan struct{}
	if opts.Stdin != nil && !opts.TTY && !opts.Detach {
		r := &eofReader{r: opts.Stdin, done: make(chan struct{})}
		opts.Stdin, stdinEOF = r, r.done
	}
	creator, err := c.execIO(opts)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	proc, err := task.Exec(ctx, execID(), process, creator)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, notRunning(ctx, task, err))
	}
	return runExec(ctx, proc, opts, stdinEOF)
}

// notRunning explains a failed exec by the task's status when the task is
// not running (the status is asked only then: the daemon's healthchecks
// exec every second, and each request costs).
func notRunning(ctx context.Context, task containerd.Task, err error) error {
	st, serr := task.Status(ctx)
	if serr != nil || st.Status == containerd.Running {
		return err
	}
	return errNotRunning(st.Status)
}

// errNotRunning is the error of an exec into a task in status st.
func errNotRunning(st containerd.ProcessStatus) error {
	return fmt.Errorf("the container is %s, not running: start it first: %w", st, errdefs.ErrFailedPrecondition)
}

// execSpec is the container's process spec with opts applied. It reads
// the container record LoadContainer fetched: no further request.
func (c *Client) execSpec(ctx context.Context, ctr containerd.Container, opts ExecOptions) (*oci.Spec, error) {
	info, err := ctr.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return nil, err
	}
	if info.Spec == nil {
		return nil, errors.New("the container has no OCI spec")
	}
	s := new(oci.Spec)
	if err := json.Unmarshal(info.Spec.GetValue(), s); err != nil {
		return nil, fmt.Errorf("read the container's OCI spec: %w", err)
	}
	p := s.Process
	p.Args = opts.Args
	p.Terminal = opts.TTY
	p.Env = mergeEnv(p.Env, opts.Env)
	if opts.WorkingDir != "" {
		p.Cwd = opts.WorkingDir
	}
	var sopts []oci.SpecOpts
	if opts.User != "" {
		sopts = append(sopts, oci.WithUser(opts.User))
	}
	if opts.Privileged {
		sopts = append(sopts, oci.WithAllCurrentCapabilities)
	}
	for _, o := range sopts {
		if err := o(ctx, c.ctr, &info, s); err != nil {
			return nil, fmt.Errorf("user %q: %w", opts.User, err)
		}
	}
	return s, nil
}

// mergeEnv returns base with extra's variables set, later ones winning.
func mergeEnv(base, extra []string) []string {
	out := append([]string{}, base...)
	for _, kv := range extra {
		key := kv
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				key = kv[:i]
				break
			}
		}
		replaced := false
		for i, old := range out {
			if len(old) > len(key) && old[:len(key)] == key && old[len(key)] == '=' {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

func (c *Client) execIO(opts ExecOptions) (cio.Creator, error) {
	if opts.Detach {
		return cio.NullIO, nil
	}
	dir := c.execFIFODir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cioOpts := []cio.Opt{cio.WithFIFODir(dir)}
	stdout, stderr := opts.Stdout, opts.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if opts.TTY {
		cioOpts = append(cioOpts, cio.WithStreams(opts.Stdin, stdout, nil), cio.WithTerminal)
	} else {
		cioOpts = append(cioOpts, cio.WithStreams(opts.Stdin, stdout, stderr))
	}
	return cio.NewCreator(cioOpts...), nil
}

// runExec starts proc, forwards resizes and waits for its exit; the
// process is deleted afterwards unless detached.
func runExec(ctx context.Context, proc containerd.Process, opts ExecOptions, stdinEOF <-chan struct{}) (int, error) {
	if opts.Detach {
		if err := proc.Start(ctx); err != nil {
			_, _ = proc.Delete(context.WithoutCancel(ctx))
			return 0, fmt.Errorf("start exec: %w", err)
		}
		return 0, nil
	}
	defer func() { _, _ = proc.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill) }()
	exitC, err := proc.Wait(ctx)
	if err != nil {
		return 0, fmt.Errorf("wait for exec: %w", err)
	}
	if err := proc.Start(ctx); err != nil {
		return 0, fmt.Errorf("start exec: %w", err)
	}
	if stdinEOF != nil {
		go closeStdinAtEOF(ctx, proc, stdinEOF)
	}
	if opts.TTY && opts.Resize != nil {
		go forwardResize(ctx, proc, opts.Resize)
	}
	select {
	case st := <-exitC:
		proc.IO().Wait()
		code, _, err := st.Result()
		if err != nil {
			return 0, fmt.Errorf("exec: %w", err)
		}
		return int(code), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// closeStdinAtEOF closes the process's stdin once the caller's stdin
// ended: the process sees EOF only when the shim closes its end too.
func closeStdinAtEOF(ctx context.Context, proc containerd.Process, eof <-chan struct{}) {
	select {
	case <-eof:
		_ = proc.CloseIO(ctx, containerd.WithStdinCloser)
	case <-ctx.Done():
	}
}

func forwardResize(ctx context.Context, proc containerd.Process, sizes <-chan [2]uint16) {
	for {
		select {
		case <-ctx.Done():
			return
		case sz, ok := <-sizes:
			if !ok {
				return
			}
			_ = proc.Resize(ctx, uint32(sz[0]), uint32(sz[1]))
		}
	}
}

func execID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "exec-" + hex.EncodeToString(b)
}

// eofReader reports when its reader returned EOF (or failed).
type eofReader struct {
	r    io.Reader
	once sync.Once
	done chan struct{}
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.done) })
	}
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}
