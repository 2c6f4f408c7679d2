package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func init() { registerCommand(newLogsCommand) }

// While following, files are polled every logsPoll and the project is
// observed again every logsObserve, to pick up containers that start later
// or are recreated (a restart keeps its file, so its reader just goes on).
const (
	logsPoll    = 100 * time.Millisecond
	logsObserve = 500 * time.Millisecond
)

type logsOptions struct {
	follow     bool
	tail       string
	since      string
	until      string
	timestamps bool
	noColor    bool
	noPrefix   bool
	index      int
}

func newLogsCommand(a *app) *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] [SERVICE...]",
		Short: "Show the output of the project's containers, merged in time order",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runLogs(cmd.Context(), o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.follow, "follow", "f", false, "Follow log output, also of containers that start later")
	f.StringVarP(&o.tail, "tail", "n", "all", "Number of lines to show from the end of each container's log, or all")
	f.StringVar(&o.since, "since", "", "Show logs since a time (2013-01-02T13:23:37Z) or for a duration before now (42m)")
	f.StringVar(&o.until, "until", "", "Show logs until a time (2013-01-02T13:23:37Z) or a duration before now (42m)")
	f.BoolVarP(&o.timestamps, "timestamps", "t", false, "Show timestamps")
	f.BoolVar(&o.noColor, "no-color", false, "Produce monochrome output")
	f.BoolVar(&o.noPrefix, "no-log-prefix", false, "Don't print a prefix in logs")
	f.IntVar(&o.index, "index", 0, "Index of the container if the service has several replicas")
	// -f is --follow here, as in compose; --file stays available by name.
	f.StringArrayVar(&a.opts.files, "file", a.opts.files, "Compose configuration files")
	return cmd
}

// query turns the flags into what each container's reader selects.
func (o logsOptions) query(now time.Time) (ctrd.LogQuery, error) {
	q := ctrd.LogQuery{Tail: -1}
	if o.tail != "" && o.tail != "all" {
		n, err := strconv.Atoi(o.tail)
		if err != nil {
			return q, fmt.Errorf("--tail %q: use a number of lines or all", o.tail)
		}
		q.Tail = max(n, -1)
	}
	var err error
	if o.since != "" {
		if q.Since, err = ctrd.ParseLogTime(o.since, now); err != nil {
			return q, fmt.Errorf("--since: %w", err)
		}
	}
	if o.until != "" {
		if q.Until, err = ctrd.ParseLogTime(o.until, now); err != nil {
			return q, fmt.Errorf("--until: %w", err)
		}
	}
	return q, nil
}

func (a *app) runLogs(ctx context.Context, o logsOptions, services []string) error {
	q, err := o.query(time.Now())
	if err != nil {
		return err
	}
	q.Follow = o.follow
	project, err := a.projectName(ctx)
	if err != nil {
		return err
	}
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	w := newLogPrinter(a.stdout, o, a.colorLogs(o))
	s := &logSession{c: c, project: project, services: services, o: o, q: q, w: w, stderr: a.stderr, open: map[string]*followedLog{}}
	defer s.close()
	if len(services) > 0 {
		if d, err := a.loadProject(ctx, nil, nil, false); err == nil && d.Project == project {
			s.declared = d.Declared
		}
	}
	if err := s.observe(ctx, true); err != nil {
		return err
	}
	if !o.follow {
		return s.drain()
	}
	return s.follow(ctx)
}

// colorLogs: prefixes are coloured on a terminal, unless --no-color or
// --ansi never; --ansi always colours anywhere.
func (a *app) colorLogs(o logsOptions) bool {
	switch {
	case o.noColor || a.opts.ansi == "never":
		return false
	case a.opts.ansi == "always":
		return true
	}
	return isTerminal(a.stdout)
}

// logSession is one `stack logs` run: the containers selected so far, each
// with its reader.
type logSession struct {
	c        *ctrd.Client
	project  string
	services []string
	o        logsOptions
	q        ctrd.LogQuery
	w        *logPrinter
	stderr   io.Writer
	open     map[string]*followedLog // by container ID
	order    []*followedLog          // in the order first seen
	// observeFailed: the last observation while following failed.
	observeFailed bool
	declared      []string // services of the compose file, nil without one
}

type followedLog struct {
	id     string
	name   string
	reader *ctrd.LogReader
	gone   bool
}

// observe reads the project's containers and opens a reader for each new
// one; one found while following is opened once it has started, so that a
// recreated container shows under its final name, not the temporary one it
// is created with. Readers of containers that are gone are read to their
// end once more, then dropped.
func (s *logSession) observe(ctx context.Context, first bool) error {
	st, err := s.c.Observe(ctx, s.project)
	if err != nil {
		return err
	}
	return s.observed(ctx, st, first)
}

// observed is observe with the project already observed (an attached up
// observes once for its logs and its exits).
func (s *logSession) observed(ctx context.Context, st engine.State, first bool) error {
	selected := selectLogContainers(st.ProjectContainers(s.project), s.services, s.o.index)
	if first && !s.o.follow {
		if err := checkLogServices(selected, s.unknownServices(), s.project); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, ctr := range selected {
		seen[ctr.ID] = true
		if fl := s.open[ctr.ID]; fl != nil {
			fl.name = logName(ctr) // a recreated container is renamed once the old one is gone
			continue
		}
		if !first && ctr.Status == engine.StatusCreated {
			continue // not started yet: a recreate renames it first
		}
		if err := s.openLog(ctx, ctr, first); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(s.order))
	for _, fl := range s.order {
		fl.gone = !seen[fl.id]
		names = append(names, fl.name)
	}
	s.w.setNames(names)
	return nil
}

// openLog starts reading a container's log: with --tail when it is there
// from the start, else from its first line.
func (s *logSession) openLog(ctx context.Context, ctr engine.Container, first bool) error {
	q := s.q
	if first {
		s.warnUnreadable(ctx, ctr)
	} else {
		q.Tail = -1
	}
	r, err := s.c.OpenLogs(ctr.ID, q)
	if err != nil {
		return err
	}
	fl := &followedLog{id: ctr.ID, name: logName(ctr), reader: r}
	s.open[ctr.ID], s.order = fl, append(s.order, fl)
	return nil
}

// drain prints what every reader has now, merged in time order, and drops
// the readers of containers that are gone.
func (s *logSession) drain() error {
	readers := make([]*ctrd.LogReader, len(s.order))
	for i, fl := range s.order {
		readers[i] = fl.reader
	}
	err := ctrd.MergeLogs(readers, func(i int, e ctrd.LogEntry) error {
		return s.w.print(s.order[i].name, e)
	})
	if ferr := s.w.flush(); err == nil {
		err = ferr
	}
	s.order = slices.DeleteFunc(s.order, func(fl *followedLog) bool {
		if fl.gone {
			fl.reader.Close()
			delete(s.open, fl.id)
		}
		return fl.gone
	})
	return err
}

// follow drains on every poll and observes again now and then, until
// Ctrl-C (or --until has passed).
func (s *logSession) follow(ctx context.Context) error {
	poll := time.NewTicker(logsPoll)
	defer poll.Stop()
	lastObserve := time.Now()
	for {
		if err := s.drain(); err != nil {
			return err
		}
		if !s.q.Until.IsZero() && time.Now().After(s.q.Until) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		}
		if time.Since(lastObserve) >= logsObserve {
			lastObserve = time.Now()
			s.observeAgain(ctx)
		}
	}
}

// observeAgain keeps following through a containerd that is briefly away
// (restarted, busy): the files are still read, and it says so once.
func (s *logSession) observeAgain(ctx context.Context) {
	err := s.observe(ctx, false)
	switch {
	case err == nil:
		s.observeFailed = false
	case ctx.Err() == nil && !s.observeFailed:
		s.observeFailed = true
		fmt.Fprintf(s.stderr, "warning: cannot see new containers for now (still following the others): %v\n", err)
	}
}

// unknownServices are the named services the compose file (when there is
// one) does not declare: a declared service without containers just has
// no logs.
func (s *logSession) unknownServices() []string {
	if s.declared == nil {
		return s.services
	}
	return slices.DeleteFunc(slices.Clone(s.services), func(svc string) bool { return slices.Contains(s.declared, svc) })
}

// warnUnreadable says, as compose does, when a container keeps no logs.
func (s *logSession) warnUnreadable(ctx context.Context, ctr engine.Container) {
	if d, err := s.c.LogDriver(ctx, ctr.ID); err == nil && d != "json-file" {
		fmt.Fprintf(s.stderr, "warning: %s uses logging driver %q, which keeps no logs to show\n", logName(ctr), d)
	}
}

func (s *logSession) close() {
	for _, fl := range s.order {
		fl.reader.Close()
	}
}

// selectLogContainers keeps the service containers (no one-off runs) of the
// named services (all when none is named), and replica --index when given,
// ordered by name.
func selectLogContainers(containers []engine.Container, services []string, index int) []engine.Container {
	var out []engine.Container
	for _, c := range containers {
		if c.OneOff || (len(services) > 0 && !slices.Contains(services, c.Service)) || (index > 0 && c.Number != index) {
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y engine.Container) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// checkLogServices makes a named service without any container an error,
// as compose's "no such service".
func checkLogServices(selected []engine.Container, services []string, project string) error {
	for _, svc := range services {
		if !slices.ContainsFunc(selected, func(c engine.Container) bool { return c.Service == svc }) {
			return fmt.Errorf("no such service: %s (project %s has no container for it; check the name with `stack ps -a`)", svc, project)
		}
	}
	return nil
}

// logName is what compose prints before each line: service-N, or the
// container_name when the service sets one.
func logName(c engine.Container) string {
	if rest, ok := strings.CutPrefix(c.Name, c.Project+"-"); ok && rest == c.Service+"-"+strconv.Itoa(c.Number) {
		return rest
	}
	return c.Name
}

// logPrinter writes lines as compose does: "name  | text", the names padded
// to the widest, each coloured in turn.
type logPrinter struct {
	w        *bufio.Writer
	o        logsOptions
	color    bool
	width    int
	colors   map[string]string
	prefixes map[string]string
}

// logColors is compose's rainbow: cyan, yellow, green, magenta, blue, then
// their bright variants.
var logColors = []string{"36", "33", "32", "35", "34", "36;1", "33;1", "32;1", "35;1", "34;1"}

func newLogPrinter(w io.Writer, o logsOptions, color bool) *logPrinter {
	return &logPrinter{w: bufio.NewWriterSize(w, 64<<10), o: o, color: color, colors: map[string]string{}, prefixes: map[string]string{}}
}

// setNames gives each new name the next colour and pads to the widest.
func (p *logPrinter) setNames(names []string) {
	p.width, p.prefixes = 0, map[string]string{}
	for _, name := range names {
		if _, ok := p.colors[name]; !ok {
			p.colors[name] = logColors[len(p.colors)%len(logColors)]
		}
		p.width = max(p.width, len(name))
	}
}

func (p *logPrinter) print(name string, e ctrd.LogEntry) error {
	text := strings.TrimSuffix(strings.TrimSuffix(e.Text, "\n"), "\r")
	if !p.o.noPrefix {
		p.w.WriteString(p.prefix(name))
	}
	if p.o.timestamps {
		p.w.WriteString(e.Time.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") + " ")
	}
	p.w.WriteString(text)
	return p.w.WriteByte('\n')
}

// prefix is "name  | ", padded and coloured, made once per name and width.
func (p *logPrinter) prefix(name string) string {
	if s, ok := p.prefixes[name]; ok {
		return s
	}
	s := fmt.Sprintf("%-*s |", p.width, name)
	if p.color {
		s = "\033[" + p.colors[name] + "m" + s + "\033[0m"
	}
	p.prefixes[name] = s + " "
	return s + " "
}

func (p *logPrinter) flush() error { return p.w.Flush() }
