package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/reconcile"
)

// progress renders Apply's events as compose users know them: on a
// terminal one line per resource updated in place, otherwise plain lines,
// JSON lines, or nothing.
type progress struct {
	mode  string // tty, plain, json, quiet
	w     io.Writer
	title string

	mu    sync.Mutex
	lines []*stepLine
	index map[string]*stepLine
	drawn int
	start time.Time
}

type stepLine struct {
	key     string
	text    string
	done    bool
	failed  bool
	elapsed time.Duration
	started time.Time
}

// newProgress picks the mode from --progress ("auto" means tty on a
// terminal) and --ansi.
func newProgress(a *app, title string) *progress {
	mode := a.opts.progress
	if mode == "auto" || mode == "" {
		mode = "plain"
		if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && a.opts.ansi != "never" {
			mode = "tty"
		}
	}
	return &progress{mode: mode, w: a.stderr, title: title, index: map[string]*stepLine{}, start: time.Now()}
}

// verbs maps a step kind to compose's words while it runs and once done.
var verbs = map[reconcile.Kind][2]string{
	reconcile.KindPullImage:       {"Pulling", "Pulled"},
	reconcile.KindRemoveImage:     {"Removing", "Removed"},
	reconcile.KindCreateNetwork:   {"Creating", "Created"},
	reconcile.KindRemoveNetwork:   {"Removing", "Removed"},
	reconcile.KindCreateVolume:    {"Creating", "Created"},
	reconcile.KindRemoveVolume:    {"Removing", "Removed"},
	reconcile.KindCreateContainer: {"Creating", "Created"},
	reconcile.KindStartContainer:  {"Starting", "Started"},
	reconcile.KindStopContainer:   {"Stopping", "Stopped"},
	reconcile.KindRemoveContainer: {"Removing", "Removed"},
	reconcile.KindRenameContainer: {"Recreate", "Recreated"},
	reconcile.KindWait:            {"Waiting", "Ready"},
}

func resourceType(k reconcile.Kind) string {
	switch k {
	case reconcile.KindPullImage, reconcile.KindRemoveImage:
		return "Image"
	case reconcile.KindCreateNetwork, reconcile.KindRemoveNetwork:
		return "Network"
	case reconcile.KindCreateVolume, reconcile.KindRemoveVolume:
		return "Volume"
	case reconcile.KindWait:
		return "Service"
	}
	return "Container"
}

// OnEvent is handed to reconcile.Apply; Apply calls it from one goroutine.
func (p *progress) OnEvent(e reconcile.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == "json" {
		p.emitJSON(e)
		return
	}
	if p.mode == "quiet" {
		return
	}
	key := resourceType(e.Step.Kind) + " " + e.Step.Resource
	line := p.index[key]
	if line == nil {
		line = &stepLine{key: key, started: e.At}
		p.index[key] = line
		p.lines = append(p.lines, line)
	}
	v := verbs[e.Step.Kind]
	switch e.Status {
	case reconcile.EventStarted:
		line.text, line.done = v[0], false
		line.started = e.At
	case reconcile.EventDone:
		line.text, line.done = v[1], true
		line.elapsed = e.At.Sub(line.started)
	case reconcile.EventFailed:
		line.text, line.done, line.failed = "Error "+errText(e.Err), true, true
	case reconcile.EventSkipped:
		line.text, line.done = "Skipped", true
	}
	if p.mode == "plain" {
		fmt.Fprintf(p.w, " %s  %s\n", line.key, line.text)
		return
	}
	p.redraw()
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (p *progress) emitJSON(e reconcile.Event) {
	rec := map[string]any{
		"id": resourceType(e.Step.Kind) + " " + e.Step.Resource, "status": string(e.Status),
		"step": string(e.Step.Kind), "time": e.At.Format(time.RFC3339Nano),
	}
	if e.Duration > 0 {
		rec["duration_ms"] = e.Duration.Milliseconds()
	}
	if e.Err != nil {
		rec["error"] = e.Err.Error()
	}
	_ = json.NewEncoder(p.w).Encode(rec)
}

// redraw rewrites the block of lines in place, as compose's tty writer does.
func (p *progress) redraw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	done := 0
	for _, l := range p.lines {
		if l.done && !l.failed {
			done++
		}
	}
	fmt.Fprintf(&b, "\x1b[2K[+] %s %d/%d\n", p.title, done, len(p.lines))
	for _, l := range p.lines {
		mark := " "
		switch {
		case l.failed:
			mark = "✘"
		case l.done:
			mark = "✔"
		}
		fmt.Fprintf(&b, "\x1b[2K %s %-40s %-12s %.1fs\n", mark, l.key, l.text, l.elapsed.Seconds())
	}
	p.drawn = len(p.lines) + 1
	io.WriteString(p.w, b.String())
}

// pullProgress renders layer progress of pulls during up.
func (p *progress) pullProgress(ev engine.PullProgress) {
	if p.mode != "plain" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Status == "done" {
		fmt.Fprintf(p.w, " Image %s  layer %s done (%d bytes)\n", ev.Ref, shortDigest(ev.Digest), ev.Total)
	}
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
