package ctrd

import (
	"github.com/stackdev/stack/engine/jsonfile"

	"errors"
	"io"
	"sync"

	"github.com/stackdev/stack/engine"
)

// attachLog copies what an attached task prints into the container's
// json-file log as well, so that `stack logs` shows a one-off container's
// output as it shows a service's: the task's streams go to the CLI through
// FIFOs, not through the logging binary.
type attachLog struct {
	log     *jsonfile.Log
	streams []*logTee
}

// openAttachLog opens the container's log for appending; it is nil for the
// "none" driver. A log that cannot be opened fails the start: its options are
// the same the logging binary would have refused.
func (c *Client) openAttachLog(id string, spec engine.ContainerSpec) (*attachLog, error) {
	if spec.Logging.Driver == "none" {
		return nil, nil
	}
	cfg, err := ParseLogConfig(c.LogPath(id), spec.Logging)
	if err != nil {
		return nil, err
	}
	w, err := jsonfile.Open(cfg)
	if err != nil {
		return nil, err
	}
	return &attachLog{log: w}, nil
}

// tee returns a writer that writes to w and logs the same bytes as stream
// ("stdout" or "stderr"); without a log it is w. A failing log write never
// holds back the caller's output.
func (l *attachLog) tee(stream string, w io.Writer) io.Writer {
	if l == nil || w == nil {
		return w
	}
	t := &logTee{log: l.log, stream: stream, w: w}
	l.streams = append(l.streams, t)
	return t
}

// Close logs every stream's unterminated last line and closes the file.
func (l *attachLog) Close() error {
	if l == nil {
		return nil
	}
	var errs []error
	for _, t := range l.streams {
		errs = append(errs, t.flush())
	}
	return errors.Join(append(errs, l.log.Close())...)
}

// logTee is one stream of an attachLog. Complete lines are logged as they
// come (cut at jsonfile.MaxLine as the logging binary cuts them); the rest waits
// for its newline, or for Close.
type logTee struct {
	log    *jsonfile.Log
	stream string
	w      io.Writer

	mu   sync.Mutex
	held []byte
	b    jsonfile.Batch
}

func (t *logTee) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	data := append(t.held, p...)
	rest := t.b.Split(t.stream, data)
	_ = t.log.Write(&t.b) // the CLI's copy matters more than the log's
	t.held = append(data[:0], rest...)
	return n, err
}

func (t *logTee) flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.held) == 0 {
		return nil
	}
	t.b.Add(t.stream, t.held)
	t.held = nil
	return t.log.Write(&t.b)
}
