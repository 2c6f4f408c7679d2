package ctrd

import (
	"github.com/stackdev/stack/engine/jsonfile"

	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// holdPoll is how often the holder looks for its container's state
// directory when no inotify event wakes it first.
const holdPoll = time.Second

// RunIOHold is the body of the holder process (see IOHoldCommand): fd 3 is
// the readiness pipe, fd 4 the PID file, locked by whoever started it (a
// holder started by hand takes the lock itself). It returns when the
// container's state directory is gone.
func RunIOHold(arg string) error {
	// The holder has its own session; these come only from a terminal or
	// a closed reader, and must not end the container's stdin.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	ready, lock := os.NewFile(3, "ready"), os.NewFile(4, "lock")
	cfg, err := decodeHoldConfig(arg)
	if err != nil {
		return reportHoldError(ready, err)
	}
	h, err := openHolder(cfg, lock)
	if err != nil {
		return reportHoldError(ready, err)
	}
	// One byte, then close: the starter waits for it.
	_, _ = ready.Write([]byte{1})
	_ = ready.Close()
	return h.run(waitRemoved)
}

// reportHoldError tells the starter why the holder cannot run.
func reportHoldError(ready *os.File, err error) error {
	if ready != nil {
		_, _ = ready.WriteString(err.Error())
		_ = ready.Close()
	}
	return err
}

// holder owns one container's FIFOs and its log.
type holder struct {
	cfg   HoldConfig
	lock  *os.File
	fifos []*os.File    // stdin, stdout, stderr
	log   *jsonfile.Log // nil with Discard
}

// openHolder takes the lock (unless inherited), creates and opens the
// FIFOs read-write, so that the shim's opens never block or see EOF, and
// opens the log.
func openHolder(cfg HoldConfig, lock *os.File) (*holder, error) {
	h := &holder{cfg: cfg}
	if err := h.open(lock); err != nil {
		_ = h.close()
		return nil, err
	}
	return h, nil
}

func (h *holder) open(lock *os.File) error {
	var err error
	if h.lock, err = lockHolder(h.cfg, lock); err != nil {
		return err
	}
	for _, name := range []string{stdinFIFO, stdoutFIFO, stderrFIFO} {
		f, err := openFIFO(h.cfg.fifo(name))
		if err != nil {
			return err
		}
		h.fifos = append(h.fifos, f)
	}
	if !h.cfg.Discard {
		h.log, err = jsonfile.Open(h.cfg.Log)
	}
	return err
}

// lockHolder makes sure this process holds the PID file's lock, then writes
// its PID there.
func lockHolder(cfg HoldConfig, inherited *os.File) (*os.File, error) {
	lock := inherited
	if lock != nil && !isLockFile(lock, cfg) {
		lock.Close()
		lock = nil
	}
	if lock == nil {
		f, err := os.OpenFile(cfg.fifo(holdLockFile), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open the io holder's lock: %w", err)
		}
		lock = f
	}
	// Taking a lock this open file already holds succeeds.
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("another io holder runs for %s: %w", cfg.Dir, err)
	}
	if err := lock.Truncate(0); err != nil {
		lock.Close()
		return nil, err
	}
	if _, err := lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		lock.Close()
		return nil, err
	}
	return lock, nil
}

// isLockFile tells whether f (an inherited descriptor) is the PID file.
func isLockFile(f *os.File, cfg HoldConfig) bool {
	mine, err1 := f.Stat()
	there, err2 := os.Stat(cfg.fifo(holdLockFile))
	return err1 == nil && err2 == nil && os.SameFile(mine, there)
}

// openFIFO creates the FIFO at path if needed and opens it read-write.
func openFIFO(path string) (*os.File, error) {
	if err := unix.Mkfifo(path, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeNamedPipe {
		return nil, fmt.Errorf("%s is not a FIFO: remove it and start the container again", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

// run copies stdout and stderr into the log until removed returns, then
// lets go of everything. The stdin FIFO is only held, never written.
func (h *holder) run(removed func(dir string)) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, stream := range []string{"stdout", "stderr"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.copy(stream, h.fifos[i+1])
		}()
	}
	removed(h.cfg.Dir)
	for _, f := range h.fifos {
		_ = f.Close() // ends the copies with os.ErrClosed
	}
	wg.Wait()
	h.fifos = nil
	return errors.Join(append(errs, h.close())...)
}

func (h *holder) copy(stream string, r io.Reader) error {
	if h.log == nil {
		_, err := io.Copy(io.Discard, r)
		if errors.Is(err, os.ErrClosed) {
			return nil
		}
		return err
	}
	return jsonfile.CopyStream(h.log, stream, r)
}

// close releases what openHolder opened.
func (h *holder) close() error {
	var errs []error
	for _, f := range h.fifos {
		errs = append(errs, f.Close())
	}
	if h.log != nil {
		errs = append(errs, h.log.Close())
	}
	if h.lock != nil {
		errs = append(errs, h.lock.Close())
	}
	return errors.Join(errs...)
}

// waitRemoved returns once dir no longer exists: woken by inotify when an
// entry of its parent is deleted or moved, checking every holdPoll in any
// case.
func waitRemoved(dir string) {
	w := watchParent(dir)
	if w != nil {
		defer w.Close()
	}
	var buf [4096]byte
	for dirExists(dir) {
		if w == nil {
			time.Sleep(holdPoll)
			continue
		}
		_ = w.SetReadDeadline(time.Now().Add(holdPoll))
		if _, err := w.Read(buf[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			w.Close()
			w = nil
		}
	}
}

// watchParent is an inotify descriptor watching the directory that holds
// dir, or nil. The parent, not dir itself: dir's own IN_DELETE_SELF waits
// until the FIFOs in it, which the holder keeps open, are closed.
func watchParent(dir string) *os.File {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	mask := uint32(unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR)
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(dir), mask); err != nil {
		unix.Close(fd)
		return nil
	}
	return os.NewFile(uintptr(fd), "inotify")
}

// dirExists is false only when dir is known to be gone: an error that is
// not "not exist" keeps the container's stdin held.
func dirExists(dir string) bool {
	_, err := os.Stat(dir)
	return err == nil || !isNotExist(err)
}
