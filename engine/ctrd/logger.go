package ctrd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// maxLogLine is where a line without a newline is cut into a partial entry,
// as Docker's log copier does.
const maxLogLine = 16 << 10

// F_SETPIPE_SZ (not in package syscall) and the pipe size asked for: the
// default /proc/sys/fs/pipe-max-size.
const (
	fSetPipeSize = 1031
	pipeSize     = 1 << 20
)

// batchWait is how long the logger lets a short read's pipe fill before
// reading again: a writer in full flow then costs one wakeup and one file
// write per batch, not per write(2) it makes.
const batchWait = time.Millisecond

// reopenCheck is how often the writer checks that its file is still the one
// at its path (someone may have deleted it by hand).
const reopenCheck = time.Second

// RunLogDriver is the body of the logging binary the shim starts for each
// task: fd 3 is the task's stdout, fd 4 its stderr, fd 5 the readiness pipe.
// It writes json-file lines until both pipes reach EOF, which the shim causes
// on task delete. SIGTERM (sent by the shim right after) is ignored so that
// nothing buffered is lost; the shim's SIGKILL 12 s later is the backstop.
func RunLogDriver(arg string) error {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	// Non-blocking pipes let reads time out, for partialWait; large ones let
	// a fast writer go on while the logger writes a batch.
	for fd := 3; fd <= 4; fd++ {
		_ = syscall.SetNonblock(fd, true)
		_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), fSetPipeSize, pipeSize)
	}
	stdout, stderr, ready := os.NewFile(3, "stdout"), os.NewFile(4, "stderr"), os.NewFile(5, "ready")
	cfg, err := decodeLogConfig(arg)
	if err != nil {
		return drainAfter(err, ready, stdout, stderr)
	}
	w, err := openJSONLog(cfg)
	if err != nil {
		return drainAfter(err, ready, stdout, stderr)
	}
	signalReady(ready)
	return errors.Join(copyLogStreams(w, stdout, stderr), w.Close())
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
func drainAfter(err error, ready *os.File, streams ...*os.File) error {
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

// copyLogStreams copies stdout and stderr into w, one goroutine each, until
// both reach EOF. A nil reader is skipped.
func copyLogStreams(w *jsonLog, stdout, stderr io.Reader) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, r := range []io.Reader{stdout, stderr} {
		if r == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = copyStream(w, []string{"stdout", "stderr"}[i], r)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// partialWait is how long an unterminated line waits for its end before it
// is written as it is: the 1.6 shim holds the pipes open until the task is
// deleted, so waiting for EOF would hold back a prompt, or the last words of
// a container that exited, until the next start or stop.
const partialWait = 200 * time.Millisecond

type readDeadliner interface{ SetReadDeadline(time.Time) error }

// copyStream reads what the pipe has and writes its lines in one batch per
// read. A line longer than maxLogLine, an unterminated line still waiting
// after partialWait (when r supports read deadlines) and the tail at EOF
// become entries without a newline.
func copyStream(w *jsonLog, stream string, r io.Reader) error {
	buf := make([]byte, 256<<10)
	held := 0 // bytes of an unterminated line at the start of buf
	dl, _ := r.(readDeadliner)
	var b batch
	var firstErr error
	for {
		if dl != nil && dl.SetReadDeadline(partialDeadline(held)) != nil {
			dl = nil // not pollable: wait for EOF instead
		}
		n, err := r.Read(buf[held:])
		rest := b.split(stream, buf[:held+n])
		waited := errors.Is(err, os.ErrDeadlineExceeded)
		if len(rest) > 0 && (waited || err != nil) {
			b.add(stream, rest)
			rest = nil
		}
		if werr := w.write(&b); werr != nil && firstErr == nil {
			firstErr = werr // keep reading: a container must not block on its output
		}
		held = copy(buf, rest)
		if err == nil && n > 0 && n < len(buf)/4 {
			time.Sleep(batchWait)
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

// partialDeadline: no deadline while nothing is held.
func partialDeadline(held int) time.Time {
	if held == 0 {
		return time.Time{}
	}
	return time.Now().Add(partialWait)
}

// split adds p's complete lines to the batch, cutting any longer than
// maxLogLine, and returns the unterminated rest (shorter than maxLogLine).
func (b *batch) split(stream string, p []byte) []byte {
	for len(p) > 0 {
		if i := bytes.IndexByte(p[:min(len(p), maxLogLine)], '\n'); i >= 0 {
			b.add(stream, p[:i+1])
			p = p[i+1:]
			continue
		}
		if len(p) < maxLogLine {
			return p
		}
		b.add(stream, p[:maxLogLine])
		p = p[maxLogLine:]
	}
	return p
}

// batch is one stream's raw lines, waiting to be encoded and written.
type batch struct {
	stream string
	raw    []byte
	ends   []int
}

func (b *batch) add(stream string, line []byte) {
	b.stream = stream
	b.raw = append(b.raw, line...)
	b.ends = append(b.ends, len(b.raw))
}

func (b *batch) reset() { b.raw, b.ends = b.raw[:0], b.ends[:0] }

// lines calls f with each raw line.
func (b *batch) lines(f func([]byte)) {
	start := 0
	for _, end := range b.ends {
		f(b.raw[start:end])
		start = end
	}
}

// appendLogLine encodes one Docker json-file line:
// {"log":"text\n","stream":"stdout","time":"2006-01-02T15:04:05.999999999Z"}
func appendLogLine(dst []byte, stream string, text []byte, t time.Time) []byte {
	return appendLogLineStamp(dst, stream, text, t.UTC().AppendFormat(nil, time.RFC3339Nano))
}

func appendLogLineStamp(dst []byte, stream string, text, stamp []byte) []byte {
	dst = append(dst, `{"log":`...)
	dst = appendJSONString(dst, text)
	dst = append(dst, `,"stream":"`...)
	dst = append(dst, stream...)
	dst = append(dst, `","time":"`...)
	dst = append(dst, stamp...)
	return append(dst, "\"}\n"...)
}

// plainJSON marks the bytes a JSON string holds as they are.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && plainJSON[s[j]] {
			j++
		}
		dst = append(dst, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
	}
	return append(dst, '"')
}

// jsonLog is an append-only json-file log with size-based rotation:
// path, path.1 (newer), … path.<max-file - 1> (oldest).
type jsonLog struct {
	mu      sync.Mutex
	cfg     LogConfig
	f       *os.File
	size    int64
	checked time.Time
	// encoding buffers, reused under mu
	stamp   []byte
	enc     []byte
	encEnds []int
}

// openJSONLog opens (appending to) the log file at cfg.Path.
func openJSONLog(cfg LogConfig) (*jsonLog, error) {
	l := &jsonLog{cfg: cfg}
	if err := os.MkdirAll(filepath.Dir(l.cfg.Path), 0o711); err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	if err := l.open(os.O_APPEND); err != nil {
		return nil, err
	}
	return l, nil
}

// open opens the file in its existing directory: a container removed while
// its logger drains leaves nothing behind.
func (l *jsonLog) open(mode int) error {
	f, err := os.OpenFile(l.cfg.Path, os.O_WRONLY|os.O_CREATE|mode, 0o640)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	l.f, l.size, l.checked = f, fi.Size(), time.Now()
	return nil
}

// write encodes the batch with the time of writing, taken under the lock so
// that times never go back within a file, and appends it, rotating between
// lines when the next one would take the file over max-size.
func (l *jsonLog) write(b *batch) error {
	defer b.reset()
	if len(b.ends) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recheck()
	l.stamp = time.Now().UTC().AppendFormat(l.stamp[:0], time.RFC3339Nano)
	l.enc, l.encEnds = l.enc[:0], l.encEnds[:0]
	b.lines(func(line []byte) {
		l.enc = appendLogLineStamp(l.enc, b.stream, line, l.stamp)
		l.encEnds = append(l.encEnds, len(l.enc))
	})
	start := 0
	for i, end := range l.encEnds {
		lineStart := 0
		if i > 0 {
			lineStart = l.encEnds[i-1]
		}
		if l.cfg.MaxSize > 0 && l.size+int64(end-start) > l.cfg.MaxSize && l.size+int64(lineStart-start) > 0 {
			if err := l.flush(l.enc[start:lineStart]); err != nil {
				return err
			}
			start = lineStart
			if err := l.rotate(); err != nil {
				return err
			}
		}
	}
	return l.flush(l.enc[start:])
}

func (l *jsonLog) flush(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	return nil
}

// rotate shifts path.N-2 → path.N-1 … path → path.1 and starts an empty
// file; with max-file 1 the file is truncated instead.
func (l *jsonLog) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	for n := l.cfg.MaxFiles - 1; n >= 1; n-- {
		err := os.Rename(rotatedPath(l.cfg.Path, n-1), rotatedPath(l.cfg.Path, n))
		if err != nil && !isNotExist(err) {
			return fmt.Errorf("rotate log: %w", err)
		}
	}
	return l.open(os.O_TRUNC)
}

// recheck reopens the file when it was deleted or replaced by hand, and
// follows a truncation, at most once per reopenCheck.
func (l *jsonLog) recheck() {
	if time.Since(l.checked) < reopenCheck {
		return
	}
	l.checked = time.Now()
	mine, err1 := l.f.Stat()
	there, err2 := os.Stat(l.cfg.Path)
	if err1 == nil && err2 == nil && os.SameFile(mine, there) {
		l.size = mine.Size()
		return
	}
	old := l.f
	if err := l.open(os.O_APPEND); err == nil {
		old.Close()
	}
}

// Close closes the current file.
func (l *jsonLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
