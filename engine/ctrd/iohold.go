package ctrd

import (
	"github.com/stackdev/stack/engine/jsonfile"

	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"
	"golang.org/x/sys/unix"

	"github.com/stackdev/stack/engine"
)

// IOHoldCommand is the hidden subcommand that holds the I/O of a container
// with stdin_open and no tty, as conmon does for podman: the 1.6 shim gives
// a task no stdin in binary-IO mode, so such a task gets FIFOs instead, and
// this detached process keeps a writer on the stdin FIFO (the container's
// stdin never reaches EOF) and turns the stdout and stderr FIFOs into the
// same json-file log the logging binary writes. It lives as long as the
// container's state directory and outlives every other stack process.
const IOHoldCommand = "__io-hold"

// holdReadyWait bounds the wait for a new holder to open its FIFOs.
const holdReadyWait = 10 * time.Second

// Files of the holder in the container's state directory.
const (
	holdLockFile = "iohold.pid" // the holder's PID, flock'ed while it lives
	stdinFIFO    = "stdin.fifo"
	stdoutFIFO   = "stdout.fifo"
	stderrFIFO   = "stderr.fifo"
)

// HoldConfig is what the holder needs: the container's state directory
// (where the FIFOs are, and whose removal ends it) and where its output goes.
type HoldConfig struct {
	Dir     string
	Log     jsonfile.Config
	Discard bool // the "none" logging driver: output is read and dropped
}

func (cfg HoldConfig) fifo(name string) string { return filepath.Join(cfg.Dir, name) }

// encode is the holder's only argument.
func (cfg HoldConfig) encode() string {
	v, _ := url.ParseQuery(cfg.Log.Encode())
	v.Set("dir", cfg.Dir)
	if cfg.Discard {
		v.Set("discard", "1")
	}
	return v.Encode()
}

// decodeHoldConfig is encode's inverse.
func decodeHoldConfig(arg string) (HoldConfig, error) {
	lc, err := jsonfile.DecodeConfig(arg)
	if err != nil {
		return HoldConfig{}, err
	}
	v, _ := url.ParseQuery(arg) // decodeLogConfig parsed it already
	cfg := HoldConfig{Dir: v.Get("dir"), Log: lc, Discard: v.Get("discard") == "1"}
	if !filepath.IsAbs(cfg.Dir) {
		return HoldConfig{}, fmt.Errorf("io holder argument: dir %q is not absolute", cfg.Dir)
	}
	return cfg, nil
}

// holdConfig is the holder's configuration for container id.
func (c *Client) holdConfig(id string, spec engine.ContainerSpec) (HoldConfig, error) {
	dir, err := filepath.Abs(c.containerDir(id))
	if err != nil {
		return HoldConfig{}, err
	}
	lc, err := ParseLogConfig(filepath.Join(dir, id+"-json.log"), spec.Logging)
	if err != nil {
		return HoldConfig{}, err
	}
	return HoldConfig{Dir: dir, Log: lc, Discard: spec.Logging.Driver == "none"}, nil
}

// heldIO gives the task FIFOs that a holder process keeps open, after
// making sure the holder runs. It is called each time a task is created, so
// a restarted task finds the holder of the previous one, or a new one.
func (c *Client) heldIO(id string, spec engine.ContainerSpec) cio.Creator {
	return func(string) (cio.IO, error) {
		cfg, err := c.holdConfig(id, spec)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", spec.Service, err)
		}
		if err := EnsureHolder(cfg); err != nil {
			return nil, fmt.Errorf("service %s: keep stdin open: %w", spec.Service, err)
		}
		return &fileIO{cfg: cio.Config{
			Stdin:  cfg.fifo(stdinFIFO),
			Stdout: cfg.fifo(stdoutFIFO),
			Stderr: cfg.fifo(stderrFIFO),
		}}, nil
	}
}

// EnsureHolder starts the holder of cfg.Dir unless one runs already: the
// holder keeps an exclusive flock on its PID file for its whole life. The
// lock is taken here and handed to the new holder, so two callers never
// start two holders. It returns once the holder has its FIFOs open.
func EnsureHolder(cfg HoldConfig) error {
	if err := os.MkdirAll(cfg.Dir, 0o711); err != nil {
		return err
	}
	lock, err := os.OpenFile(cfg.fifo(holdLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open the io holder's lock: %w", err)
	}
	defer lock.Close()
	err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return checkFIFOs(cfg) // a holder runs (or is being started by another caller)
	} else if err != nil {
		return fmt.Errorf("lock the io holder's PID file: %w", err)
	}
	return spawnHolder(cfg, lock)
}

// checkFIFOs tells what to do when a running holder's FIFOs were deleted
// by hand: the task could not open them.
func checkFIFOs(cfg HoldConfig) error {
	for _, name := range []string{stdinFIFO, stdoutFIFO, stderrFIFO} {
		if fi, err := os.Lstat(cfg.fifo(name)); err != nil || fi.Mode().Type() != os.ModeNamedPipe {
			pid, _ := HolderRunning(cfg.Dir)
			return fmt.Errorf("%s is missing while its io holder (PID %d) runs: kill that process and start the container again", cfg.fifo(name), pid)
		}
	}
	return nil
}

// HolderRunning is the PID of the holder of dir, if one runs: the PID in
// its PID file is alive and runs this subcommand for dir. It takes no lock,
// so it never makes EnsureHolder believe a holder runs.
func HolderRunning(dir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dir, holdLockFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return 0, false
	}
	args := strings.Split(string(cmdline), "\x00")
	ok := slices.Contains(args, IOHoldCommand) && strings.Contains(string(cmdline), url.QueryEscape(dir))
	return pid, ok
}

// spawnHolder starts `stack __io-hold` in a session of its own, with no
// stdio of ours (fd 3: readiness pipe, fd 4: the locked PID file), and waits
// for it to report ready.
func spawnHolder(cfg HoldConfig, lock *os.File) error {
	bin, err := logBinary()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(bin, IOHoldCommand, cfg.encode())
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{w, lock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("start the io holder: %w", err)
	}
	// Reap it should this process outlive it (the daemon); otherwise it is
	// reparented when we exit.
	go func() { _ = cmd.Wait() }()
	if err := waitHolderReady(r); err != nil {
		_ = cmd.Process.Kill()
		return err
	}
	return nil
}

// waitHolderReady reads the readiness pipe: one byte 1 then EOF when the
// holder is ready, else its error message.
func waitHolderReady(r *os.File) error {
	_ = r.SetReadDeadline(time.Now().Add(holdReadyWait))
	msg, err := io.ReadAll(r)
	switch {
	case bytes.Equal(msg, []byte{1}):
		return nil
	case err != nil:
		return fmt.Errorf("wait for the io holder: %w", err)
	case len(msg) == 0:
		return errors.New("the io holder exited before it was ready")
	}
	return fmt.Errorf("io holder: %s", msg)
}
