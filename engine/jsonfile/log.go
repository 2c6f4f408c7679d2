package jsonfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"time"
)

// reopenCheck is how often the writer checks that its file is still the one
// at its path (someone may have deleted it by hand).
const reopenCheck = time.Second

// Log is an append-only json-file log with size-based rotation:
// path, path.1 (newer), … path.<max-file - 1> (oldest).
type Log struct {
	mu      sync.Mutex
	cfg     Config
	f       *os.File
	size    int64
	checked time.Time
	// encoding buffers, reused under mu
	stamp []byte
	glue  []byte
	enc   []byte
}

// Open opens (appending to) the log file at cfg.Path, creating its
// directory.
func Open(cfg Config) (*Log, error) {
	l := &Log{cfg: cfg}
	if err := os.MkdirAll(path.Dir(l.cfg.Path), 0o711); err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	if err := l.open(os.O_APPEND); err != nil {
		return nil, err
	}
	return l, nil
}

// open opens the file in its existing directory: a container removed while
// its logger drains leaves nothing behind.
func (l *Log) open(mode int) error {
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

// Write encodes the batch with the time of writing, taken under the lock so
// that times never go back within a file, and appends it, rotating between
// lines when the next one would take the file over max-size. The batch is
// empty afterwards.
func (l *Log) Write(b *Batch) error {
	defer b.reset()
	if len(b.parts) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recheck()
	l.stamp = time.Now().UTC().AppendFormat(l.stamp[:0], time.RFC3339Nano)
	l.glue = entryGlue(l.glue[:0], b.stream, l.stamp)
	l.enc = b.appendEncoded(l.enc[:0], l.glue, l.stamp)
	return l.writeRotating(l.enc)
}

// writeRotating appends enc, whole encoded lines, rotating first whenever
// the next line would take the file over max-size (a line longer than
// max-size alone fills a file of its own). Encoded lines hold no newline but
// their last byte, so the lines that fit are found from where max-size
// falls, not by looking at every line.
func (l *Log) writeRotating(enc []byte) error {
	for len(enc) > 0 && l.cfg.MaxSize > 0 && l.size+int64(len(enc)) > l.cfg.MaxSize {
		fit := 0
		if free := l.cfg.MaxSize - l.size; free > 0 {
			fit = bytes.LastIndexByte(enc[:free], '\n') + 1
		}
		if fit == 0 && l.size == 0 { // a line longer than max-size
			if fit = bytes.IndexByte(enc, '\n') + 1; fit == 0 {
				fit = len(enc)
			}
		}
		if err := l.flush(enc[:fit]); err != nil {
			return err
		}
		if enc = enc[fit:]; len(enc) == 0 {
			break
		}
		if err := l.rotate(); err != nil {
			return err
		}
	}
	return l.flush(enc)
}

func (l *Log) flush(p []byte) error {
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
func (l *Log) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	for n := l.cfg.MaxFiles - 1; n >= 1; n-- {
		// Removed first, not renamed over: ext4 starts writing back a
		// file renamed over another at once (auto_da_alloc), in this
		// process, while the container waits on its full pipe.
		older := RotatedPath(l.cfg.Path, n)
		if err := os.Remove(older); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate log: %w", err)
		}
		err := os.Rename(RotatedPath(l.cfg.Path, n-1), older)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate log: %w", err)
		}
	}
	return l.open(os.O_TRUNC)
}

// recheck reopens the file when it was deleted or replaced by hand, and
// follows a truncation, at most once per reopenCheck.
func (l *Log) recheck() {
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
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
