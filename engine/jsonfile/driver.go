package jsonfile

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// DriverCommand is the argument that makes the stack binary the logging
// binary. It is the only key of the binary:// URI's query, so the 1.6 shim,
// which turns the query into argv as "key value" pairs, always runs
// `stack __log-driver <encoded Config>`.
const DriverCommand = "__log-driver"

// F_SETPIPE_SZ (not in package syscall) and the pipe size asked for: the
// default /proc/sys/fs/pipe-max-size.
const (
	fSetPipeSize = 1031
	pipeSize     = 1 << 20
)

// RunDriver is the body of the logging binary the shim starts for each
// task: fd 3 is the task's stdout, fd 4 its stderr, fd 5 the readiness pipe.
// It writes json-file lines until both pipes reach EOF, which the shim causes
// on task delete. SIGTERM (sent by the shim right after) is ignored so that
// nothing buffered is lost; the shim's SIGKILL 12 s later is the backstop.
func RunDriver(arg string) error {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	var streams [2]io.Reader
	for i, fd := range []int{3, 4} {
		// Blocking reads (see Pipe); a large pipe lets a fast writer go
		// on while the logger writes a batch.
		if syscall.SetNonblock(fd, false) != nil {
			continue // not open: the shim gave no such stream
		}
		_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), fSetPipeSize, pipeSize)
		streams[i] = Pipe(fd)
	}
	ready := os.NewFile(5, "ready")
	cfg, err := DecodeConfig(arg)
	if err != nil {
		return drainAfter(err, ready, streams[:])
	}
	w, err := Open(cfg)
	if err != nil {
		return drainAfter(err, ready, streams[:])
	}
	signalReady(ready)
	return errors.Join(CopyStreams(w, streams[0], streams[1]), w.Close())
}

// signalReady lets the shim start the container: one byte, then close.
func signalReady(ready *os.File) {
	if ready == nil {
		return
	}
	_, _ = ready.Write([]byte{1})
	_ = ready.Close()
}

// drainAfter keeps the container from dying of SIGPIPE when the log file
// cannot be written: its output is read and dropped.
func drainAfter(err error, ready *os.File, streams []io.Reader) error {
	signalReady(ready)
	var wg sync.WaitGroup
	for _, s := range streams {
		if s == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, s) }()
	}
	wg.Wait()
	return err
}
