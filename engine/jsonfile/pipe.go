package jsonfile

import (
	"errors"
	"io"
	"syscall"
	"time"
	"unsafe"
)

// Pipe reads a pipe's file descriptor with plain blocking read(2), outside
// Go's poller: the poller would wake the logger at every write(2) of the
// container even while it sleeps between batches (batchWait), and a
// container writing in full flow would pay for those wakeups.
type Pipe int

// Read blocks until the pipe has data, and returns io.EOF when every writer
// has closed it.
func (p Pipe) Read(buf []byte) (int, error) {
	for {
		n, err := syscall.Read(int(p), buf)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(buf) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// waitReadable waits at most d for data (or EOF) with poll(2).
func (p Pipe) waitReadable(d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	for {
		n, err := ppoll(int(p), max(0, time.Until(deadline)))
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return false, err
		}
		return n > 0, nil
	}
}

// ppoll waits at most d for fd to be readable, with ppoll(2) called
// directly: golang.org/x/sys/unix would come late in Go's package
// initialisation (see the package doc).
func ppoll(fd int, d time.Duration) (int, error) {
	const pollIn = 0x1
	pfd := struct {
		fd             int32
		events, revent int16
	}{fd: int32(fd), events: pollIn}
	ts := syscall.NsecToTimespec(d.Nanoseconds())
	n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
