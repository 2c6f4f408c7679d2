package ctrd

import (
	"github.com/stackdev/stack/engine/jsonfile"

	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// LogEntry is one line of a container's json-file log.
type LogEntry struct {
	Time   time.Time
	Stream string // stdout or stderr
	Text   string // as the container wrote it: "\n" included unless cut
}

// LogQuery selects entries of one container's log.
type LogQuery struct {
	Tail  int       // only the last Tail lines; negative: all
	Since time.Time // zero: from the start
	Until time.Time // zero: to the end
	// Follow keeps reading what is written after the reader opened;
	// without it the reader ends where the log ended then, however fast
	// the container writes.
	Follow bool
}

// maxRotated bounds the search for rotated files (path.1, path.2, …).
const maxRotated = 1000

// LogReader reads a json-file log oldest line first, across its rotated
// files. Next returns io.EOF when nothing more is there yet; calling it again
// later continues where it stopped, following the file as it grows, is
// rotated (path renamed to path.1), truncated, deleted or created again, so
// one reader follows a container across its restarts.
type LogReader struct {
	path    string
	q       LogQuery
	queue   []string // files still to open, older first; the live path last
	off     int64    // where to start in the next file opened from queue
	f       *os.File
	br      *bufio.Reader
	pos     int64  // bytes of f consumed
	partial []byte // an unterminated line seen at EOF
	limit   int64  // without Follow: the live file's size when opened
}

// LogDriver is the logging driver container id was created with
// (json-file or none).
func (c *Client) LogDriver(ctx context.Context, id string) (string, error) {
	spec, err := c.loadSpec(ctx, id)
	if err != nil {
		return "", err
	}
	if spec.Logging.Driver == "" {
		return "json-file", nil
	}
	return spec.Logging.Driver, nil
}

// OpenLogs opens the log of container id.
func (c *Client) OpenLogs(id string, q LogQuery) (*LogReader, error) {
	return OpenLog(c.LogPath(id), q)
}

// OpenLog positions a reader on the log at path (which may not exist yet):
// at the start of the oldest rotated file, or, with q.Tail, where the last
// q.Tail lines begin, found by reading backwards from the end.
func OpenLog(path string, q LogQuery) (*LogReader, error) {
	files := logFiles(path) // newest first
	r := &LogReader{path: path, q: q}
	first, off := len(files)-1, int64(0)
	if q.Tail >= 0 && len(files) > 0 {
		var err error
		if first, off, err = tailStart(files, q.Tail); err != nil {
			return nil, fmt.Errorf("read log %s: %w", path, err)
		}
	}
	for i := first; i >= 0; i-- {
		r.queue = append(r.queue, files[i])
	}
	r.off, r.limit = off, -1
	if !q.Follow {
		r.limit = 0
		if fi, err := os.Stat(path); err == nil {
			r.limit = fi.Size()
		}
	}
	return r, nil
}

// logFiles lists path and its rotated files that exist, newest first.
func logFiles(path string) []string {
	var files []string
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	}
	for n := 1; n < maxRotated; n++ {
		p := jsonfile.RotatedPath(path, n)
		if _, err := os.Stat(p); err != nil {
			break
		}
		files = append(files, p)
	}
	if len(files) > 0 && files[0] != path {
		files = append([]string{path}, files...) // the live file, once it appears
	}
	return files
}

// Next returns the next entry within the query's time range, or io.EOF when
// the end of what has been written so far is reached.
func (r *LogReader) Next() (LogEntry, error) {
	for {
		if r.f == nil && !r.openNext() {
			return LogEntry{}, io.EOF
		}
		line, err := r.readLine()
		if err == nil {
			e, ok := decodeLogLine(line)
			if ok && r.inRange(e.Time) {
				return e, nil
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			return LogEntry{}, fmt.Errorf("read log %s: %w", r.path, err)
		}
		if !r.advance() {
			return LogEntry{}, io.EOF
		}
	}
}

func (r *LogReader) inRange(t time.Time) bool {
	return !t.Before(r.q.Since) && (r.q.Until.IsZero() || !t.After(r.q.Until))
}

// openNext opens the next queued file, or the live path once it exists.
func (r *LogReader) openNext() bool {
	path, off := r.path, int64(0)
	if len(r.queue) > 0 {
		path, off = r.queue[0], r.off
	}
	f, err := os.Open(path)
	if err != nil {
		if len(r.queue) > 0 { // rotated away meanwhile: skip it
			r.queue, r.off = r.queue[1:], 0
			return r.openNext()
		}
		return false
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return false
	}
	if len(r.queue) > 0 {
		r.queue, r.off = r.queue[1:], 0
	}
	r.f, r.pos, r.partial = f, off, nil
	var src io.Reader = f
	if path == r.path && r.limit >= 0 {
		src = io.LimitReader(f, max(0, r.limit-off))
	}
	r.br = bufio.NewReaderSize(src, 64<<10)
	return true
}

// readLine returns one whole line; an unterminated tail is kept for later.
func (r *LogReader) readLine() ([]byte, error) {
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.pos += int64(len(chunk))
		if err == nil {
			if len(r.partial) > 0 {
				line := append(r.partial, chunk...)
				r.partial = nil
				return line, nil
			}
			return chunk, nil
		}
		r.partial = append(r.partial, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// advance decides what to read after EOF: the next queued file, the new
// live file after a rotation, the start again after a truncation. It
// reports whether there may be more to read now.
func (r *LogReader) advance() bool {
	if len(r.queue) > 0 {
		r.close()
		return true
	}
	if r.limit >= 0 {
		return false // not following
	}
	mine, err1 := r.f.Stat()
	there, err2 := os.Stat(r.path)
	switch {
	case err1 != nil:
		r.close()
		return false
	case err2 == nil && !os.SameFile(mine, there): // rotated or replaced
		r.queue, r.off = newerFiles(r.path, mine), 0
		r.close()
		return true
	case mine.Size() < r.pos: // truncated
		if _, err := r.f.Seek(0, io.SeekStart); err != nil {
			r.close()
			return false
		}
		r.pos, r.partial = 0, nil
		r.br.Reset(r.f)
		return true
	}
	return false
}

// newerFiles lists, oldest first, the files written after the one done
// was renamed away: the rotated ones newer than it, then the live one. If
// it is gone (rotated past max-file, or deleted by hand), the newer ones
// are those written since its last write.
func newerFiles(path string, done os.FileInfo) []string {
	files := logFiles(path) // newest first
	var newer []string
	for i, f := range files {
		if fi, err := os.Stat(f); err == nil && os.SameFile(fi, done) {
			newer = files[:i]
			break
		}
		if fi, err := os.Stat(f); err == nil && (f == path || fi.ModTime().After(done.ModTime())) {
			newer = append(newer, f)
		}
	}
	newer = slices.Clone(newer)
	slices.Reverse(newer)
	return newer
}

func (r *LogReader) close() {
	if r.f != nil {
		r.f.Close()
	}
	r.f, r.br, r.partial = nil, nil, nil
}

// Close releases the open file.
func (r *LogReader) Close() error {
	r.close()
	return nil
}

type logLine struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// decodeLogLine reads one json-file line; garbage (a hand-edited file) is
// skipped. The logger's own layout is read directly (encoding/json is five
// times slower); anything else goes through encoding/json.
func decodeLogLine(line []byte) (LogEntry, bool) {
	if e, ok := decodeOwnLine(line); ok {
		return e, true
	}
	var l logLine
	if err := json.Unmarshal(line, &l); err != nil || l.Time.IsZero() {
		return LogEntry{}, false
	}
	return LogEntry{Time: l.Time, Stream: l.Stream, Text: l.Log}, true
}

// decodeOwnLine reads {"log":"…","stream":"…","time":"…"} as appendLogLine
// writes it.
func decodeOwnLine(line []byte) (LogEntry, bool) {
	rest, ok := bytes.CutPrefix(bytes.TrimRight(line, "\n"), []byte(`{"log":"`))
	if !ok {
		return LogEntry{}, false
	}
	text, rest, ok := cutJSONString(rest)
	if !ok {
		return LogEntry{}, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"stream":"`)); !ok {
		return LogEntry{}, false
	}
	stream, rest, ok := bytes.Cut(rest, []byte(`","time":"`))
	if !ok {
		return LogEntry{}, false
	}
	stamp, ok := bytes.CutSuffix(rest, []byte(`"}`))
	if !ok {
		return LogEntry{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(stamp))
	if err != nil {
		return LogEntry{}, false
	}
	return LogEntry{Time: t, Stream: string(stream), Text: text}, true
}

// cutJSONString reads a JSON string body up to its closing quote, with the
// escapes appendJSONString writes; \u escapes other than control
// characters and U+FFFD are left to encoding/json.
func cutJSONString(b []byte) (string, []byte, bool) {
	var out []byte
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			if out == nil {
				return string(b[:i]), b[i+1:], true
			}
			return string(out), b[i+1:], true
		case '\\':
			if out == nil {
				out = append(make([]byte, 0, len(b)), b[:i]...)
			}
			if i+1 >= len(b) {
				return "", nil, false
			}
			i++
			switch b[i] {
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case '"', '\\', '/':
				out = append(out, b[i])
			case 'u':
				if i+4 >= len(b) {
					return "", nil, false
				}
				v, err := strconv.ParseUint(string(b[i+1:i+5]), 16, 32)
				if err != nil || (v >= 0xd800 && v < 0xe000) {
					return "", nil, false // surrogates: encoding/json pairs them
				}
				out = utf8.AppendRune(out, rune(v))
				i += 4
			default:
				return "", nil, false
			}
		default:
			if out != nil {
				out = append(out, c)
			}
		}
	}
	return "", nil, false
}
