package jsonfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"
)

// MaxLine is where a line without a newline is cut into a partial entry, as
// Docker's log copier does.
const MaxLine = 16 << 10

// batchWait is how long the logger lets a short read's pipe fill before
// reading again: a writer in full flow then costs one wakeup and one file
// write per batch, not per write(2) it makes.
const batchWait = time.Millisecond

// shortRead is the size below which a read is short (and the logger waits
// batchWait): a default pipe's capacity, so that a reader of a pipe or FIFO
// left at that size never waits after finding it full, which would stop the
// writer.
const shortRead = 64 << 10

// partialWait is how long an unterminated line waits for its end before it
// is written as it is: the 1.6 shim holds the pipes open until the task is
// deleted, so waiting for EOF would hold back a prompt, or the last words of
// a container that exited, until the next start or stop.
const partialWait = 200 * time.Millisecond

// readSize is the copy buffer: a full pipe (pipeSize) in one read. Against
// reads of a quarter of it, that wakes a writer waiting on the full pipe a
// quarter as often, and writes the file in larger pieces: a tenth less
// system time for the logging binary of a fast writer.
const readSize = pipeSize

// CopyStreams copies stdout and stderr into w, one goroutine each, until
// both reach EOF. A nil reader is skipped.
func CopyStreams(w *Log, stdout, stderr io.Reader) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, r := range []io.Reader{stdout, stderr} {
		if r == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = CopyStream(w, []string{"stdout", "stderr"}[i], r)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// CopyStream reads what r has and writes its lines in one batch per read. A
// line longer than MaxLine, an unterminated line still waiting after
// partialWait (when r can wait with a timeout: a Pipe, or a file with read
// deadlines) and the tail at EOF become entries without a newline. Write
// errors do not stop the copy: a container must not block on its output.
func CopyStream(w *Log, stream string, r io.Reader) error {
	buf := make([]byte, readSize)
	held := 0 // bytes of an unterminated line at the start of buf
	var b Batch
	var firstErr error
	for {
		n, err := readWaiting(r, buf[held:], held > 0)
		rest := b.Split(stream, buf[:held+n])
		waited := errors.Is(err, errWaited)
		if len(rest) > 0 && err != nil {
			b.Add(stream, rest)
			rest = nil
		}
		if werr := w.Write(&b); werr != nil && firstErr == nil {
			firstErr = werr
		}
		held = copy(buf, rest)
		if err == nil && n > 0 && n < shortRead {
			time.Sleep(batchWait)
		} else {
			// A goroutine in full flow never blocks (reads of a full
			// pipe return at once): yielding once a batch keeps the
			// runtime from preempting it with a signal every 10 ms,
			// after each of which its monitor thread polls every
			// 20 µs again (perf: the monitor's share of the logging
			// binary's CPU, 6.7% → 2.7%).
			runtime.Gosched()
		}
		switch {
		case err == nil || waited:
		case errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed):
			return firstErr
		default:
			return errors.Join(firstErr, fmt.Errorf("read %s: %w", stream, err))
		}
	}
}

// errWaited: an unterminated line waited partialWait for more.
var errWaited = errors.New("partial line waited")

type deadlineReader interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// readWaiting reads into p; with partial, it gives up with errWaited after
// partialWait without data, if r can wait with a timeout.
func readWaiting(r io.Reader, p []byte, partial bool) (int, error) {
	switch r := r.(type) {
	case Pipe:
		if partial {
			ready, err := r.waitReadable(partialWait)
			if err != nil {
				return 0, err
			}
			if !ready {
				return 0, errWaited
			}
		}
		return r.Read(p)
	case deadlineReader:
		deadline := time.Time{}
		if partial {
			deadline = time.Now().Add(partialWait)
		}
		if r.SetReadDeadline(deadline) != nil {
			break // not pollable: wait for EOF instead
		}
		n, err := r.Read(p)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errWaited
		}
		return n, err
	}
	return r.Read(p)
}

// Split adds p's complete lines to the batch, cutting any longer than
// MaxLine, and returns the unterminated rest (shorter than MaxLine). The
// batch refers to p, which must not change until the batch is written.
//
// It looks only for the last newline: every newline ends an entry, so the
// lines before it are cut while they are encoded (appendLines), in the same
// pass that copies them.
func (b *Batch) Split(stream string, p []byte) []byte {
	end := lastNewline(p) + 1
	end += (len(p) - end) / MaxLine * MaxLine
	if end > 0 {
		b.stream = stream
		b.parts = append(b.parts, part{text: p[:end], lines: true})
	}
	return p[end:]
}

// lastNewline is the index of p's last newline, or -1. Logs end a line
// every few hundred bytes at most, so it looks byte by byte at the end of p
// first, then (for one endless line) with IndexByte, which uses vector
// instructions, at a MaxLine of p at a time.
func lastNewline(p []byte) int {
	end := max(0, len(p)-512)
	if i := bytes.LastIndexByte(p[end:], '\n'); i >= 0 {
		return end + i
	}
	for end > 0 {
		start := max(0, end-MaxLine)
		if bytes.IndexByte(p[start:end], '\n') >= 0 {
			return start + bytes.LastIndexByte(p[start:end], '\n')
		}
		end = start
	}
	return -1
}

// Batch is one stream's lines, waiting to be encoded and written. It holds
// the callers' slices, not copies.
type Batch struct {
	stream string
	parts  []part
}

// part is a run of lines from Split, or one entry from Add.
type part struct {
	text  []byte
	lines bool
}

// Add adds one line (or partial entry) of stream; line must not change
// until the batch is written.
func (b *Batch) Add(stream string, line []byte) {
	b.stream = stream
	b.parts = append(b.parts, part{text: line})
}

// appendEncoded encodes the batch's entries, all with the same time: glue
// is entryGlue of the batch's stream and stamp.
func (b *Batch) appendEncoded(dst, glue, stamp []byte) []byte {
	for _, p := range b.parts {
		if p.lines {
			dst = appendLines(dst, p.text, glue)
		} else {
			dst = appendLineStamp(dst, b.stream, p.text, stamp)
		}
	}
	return dst
}

func (b *Batch) reset() {
	clear(b.parts)
	b.parts = b.parts[:0]
}
