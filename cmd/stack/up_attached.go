package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/daemon"
	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
	"github.com/stackdev/stack/reconcile"
)

// exitDelay is how long an exit waits before it is printed, so that the
// last lines the container wrote reach its log file (through the shim and
// the logging binary) and are printed before "exited with code".
const exitDelay = 150 * time.Millisecond

// killWait bounds how long up waits for killed containers to be seen gone.
const killWait = 10 * time.Second

// attachedFlags are up's flags for running in the foreground.
type attachedFlags struct {
	attach         []string
	noAttach       []string
	attachDeps     bool
	abortOnExit    bool
	abortOnFailure bool
	exitCodeFrom   string
	noColor        bool
	noPrefix       bool
	timestamps     bool
}

func (f *attachedFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringArrayVar(&f.attach, "attach", nil, "Restrict attaching to the specified services. Incompatible with --attach-dependencies.")
	fs.StringArrayVar(&f.noAttach, "no-attach", nil, "Do not attach (stream logs) to the specified services")
	fs.BoolVar(&f.attachDeps, "attach-dependencies", false, "Automatically attach to log output of dependent services")
	fs.BoolVar(&f.abortOnExit, "abort-on-container-exit", false, "Stops all containers if any container was stopped. Incompatible with -d")
	fs.BoolVar(&f.abortOnFailure, "abort-on-container-failure", false, "Stops all containers if any container exited with failure. Incompatible with -d")
	fs.StringVar(&f.exitCodeFrom, "exit-code-from", "", "Return the exit code of the selected service container. Implies --abort-on-container-exit")
	fs.BoolVar(&f.noColor, "no-color", false, "Produce monochrome output")
	fs.BoolVar(&f.noPrefix, "no-log-prefix", false, "Don't print prefix in logs")
	fs.BoolVar(&f.timestamps, "timestamps", false, "Show timestamps")
}

// validate checks the flags as compose's validateFlags does and says
// whether up runs attached.
func (f *upFlags) validateAttached() (bool, error) {
	af := &f.attached
	if af.exitCodeFrom != "" && !af.abortOnFailure {
		af.abortOnExit = true
	}
	detach := f.detach || f.wait
	switch {
	case af.abortOnExit && af.abortOnFailure:
		return false, errors.New("--abort-on-container-failure cannot be combined with --abort-on-container-exit")
	case f.wait && (af.attachDeps || af.abortOnExit || len(af.attach) > 0):
		return false, errors.New("--wait cannot be combined with --abort-on-container-exit, --attach or --attach-dependencies")
	case detach && (af.attachDeps || af.abortOnExit || af.abortOnFailure || len(af.attach) > 0):
		return false, errors.New("--detach cannot be combined with --abort-on-container-exit, --abort-on-container-failure, --attach or --attach-dependencies")
	case len(af.attach) > 0 && af.attachDeps:
		return false, errors.New("cannot combine --attach and --attach-dependencies")
	}
	return !detach && !f.noStart, nil
}

// attachedUp is `up` in the foreground once the plan is applied: it
// follows the logs of the attached services, reports each container that
// exits, stops the project on Ctrl-C (kills it on a second one) or when
// --abort-on-container-* says so, and returns once every watched
// container has exited.
type attachedUp struct {
	a       *app
	flags   attachedFlags
	timeout time.Duration
	project string
	attach  []string // services whose logs are shown
	watched []string // services whose exits end up
	stop    []string // services Ctrl-C and an abort stop
	since   time.Time

	c       *ctrd.Client
	ctx     context.Context // outlives Ctrl-C: stopping needs it
	logs    *logSession
	printer *logPrinter
	exits   *ctrd.ExitWatch
	pending []pendingExit

	sigs        chan os.Signal
	wake        chan struct{}
	stopDone    chan error
	stopping    bool
	interrupted bool
	killedAt    time.Time
	aborted     bool
	codeFrom    bool // --exit-code-from's service has exited
	exitCode    int
	errs        []error
	observeErr  bool
	drainErr    bool
}

type pendingExit struct {
	ctr  engine.Container
	seen time.Time
}

// newAttachedUp checks the flags against the project and picks the
// services to attach to and to watch, as compose does; it returns nil when
// up runs detached.
func (a *app) newAttachedUp(f *upFlags, desired compose.Desired, services []string) (*attachedUp, error) {
	attached, err := f.validateAttached()
	if err != nil || !attached {
		return nil, err
	}
	af := f.attached
	names := serviceNames(desired)
	if af.exitCodeFrom != "" && !slices.Contains(names, af.exitCodeFrom) {
		return nil, fmt.Errorf("no such service: %s", af.exitCodeFrom)
	}
	attach, err := attachServices(desired, services, af)
	if err != nil {
		return nil, err
	}
	u := &attachedUp{
		a: a, flags: af, timeout: stopTimeout(f.timeout), project: desired.Project,
		attach: attach, watched: services, stop: services,
		since: time.Now(),
	}
	if len(u.watched) == 0 {
		u.watched = attach
	}
	if len(u.watched) == 0 {
		u.watched = names
	}
	if len(u.stop) == 0 {
		u.stop = names
	}
	return u, nil
}

func serviceNames(desired compose.Desired) []string {
	names := make([]string, 0, len(desired.Services))
	for _, s := range desired.Services {
		names = append(names, s.Name)
	}
	return names
}

// attachServices is compose's choice: the --attach services as given, else
// the services named (all when none), with their dependencies under
// --attach-dependencies, less those with attach: false; --no-attach ones
// left out.
func attachServices(desired compose.Desired, services []string, af attachedFlags) ([]string, error) {
	names := serviceNames(desired)
	var out []string
	switch {
	case len(af.attach) > 0:
		var unknown []string
		for _, s := range af.attach {
			if !slices.Contains(names, s) {
				unknown = append(unknown, s)
			}
		}
		if len(unknown) > 0 {
			return nil, fmt.Errorf("cannot attach to services not included in up: %s", strings.Join(unknown, ", "))
		}
		out = slices.Clone(af.attach)
	case len(services) == 0:
		out = names
	case af.attachDeps:
		out = withDependencies(desired, services)
	default:
		out = slices.Clone(services)
	}
	if len(af.attach) == 0 {
		out = slices.DeleteFunc(out, func(s string) bool {
			svc, ok := desired.Service(s)
			return ok && svc.NoAttach
		})
	}
	out = slices.DeleteFunc(out, func(s string) bool { return slices.Contains(af.noAttach, s) })
	slices.Sort(out)
	return slices.Compact(out), nil
}

// withDependencies adds what the services depend on, transitively.
func withDependencies(desired compose.Desired, services []string) []string {
	out := slices.Clone(services)
	for i := 0; i < len(out); i++ {
		svc, ok := desired.Service(out[i])
		if !ok {
			continue
		}
		for _, d := range svc.DependsOn {
			if !slices.Contains(out, d.Service) {
				out = append(out, d.Service)
			}
		}
	}
	return out
}

// run follows the project once the plan is applied (applyErr is how that
// went). It releases the project's lock first: other commands may change
// the project while up follows it, as they can with compose.
func (u *attachedUp) run(ctx context.Context, c *ctrd.Client, unlock func(), applyErr error) error {
	unlock()
	u.sigs = make(chan os.Signal, 2)
	signal.Notify(u.sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(u.sigs)
	interruptedEarly := ctx.Err() != nil
	if applyErr != nil && !interruptedEarly {
		return applyErr
	}
	u.c, u.ctx = c, context.WithoutCancel(ctx)
	evCtx, cancel := context.WithCancel(u.ctx)
	defer cancel()
	u.wake = make(chan struct{}, 1)
	go wakeOnEvents(evCtx, c, u.wake)
	u.start()
	if interruptedEarly {
		u.interrupt() // Ctrl-C while the plan was applied
	}
	return u.follow()
}

// wakeOnEvents pokes wake on every task or container event, so that an
// exit is seen at once rather than at the next poll.
func wakeOnEvents(ctx context.Context, c *ctrd.Client, wake chan<- struct{}) {
	_ = c.Events(ctx, func(engine.Event) {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
}

func (u *attachedUp) start() {
	o := logsOptions{timestamps: u.flags.timestamps, noColor: u.flags.noColor, noPrefix: u.flags.noPrefix}
	u.printer = newLogPrinter(u.a.stdout, o, u.a.colorLogs(o))
	if len(u.attach) > 0 {
		q := ctrd.LogQuery{Tail: -1, Since: u.since, Follow: true}
		u.logs = &logSession{c: u.c, project: u.project, services: u.attach, o: o, q: q, w: u.printer, stderr: u.a.stderr, open: map[string]*followedLog{}}
	}
	watched := func(c engine.Container) bool { return !c.OneOff && slices.Contains(u.watched, c.Service) }
	u.exits = ctrd.NewExitWatch(u.since, watched, u.restarts)
}

// restarts says whether the daemon will start an exited container again,
// by the same decision it makes (the restarts within a policy's window are
// the daemon's to count: up assumes one more is allowed).
func (u *attachedUp) restarts(c engine.Container) bool {
	if os.Getenv("STACK_DAEMON") == "off" {
		return false // no daemon enforces the policies
	}
	exit := daemon.Exit{Code: c.ExitCode, Ran: c.FinishedAt.Sub(c.StartedAt), UserStopped: c.UserStopped}
	return daemon.Decide(c.Restart, exit, daemon.History{Count: c.RestartCount}, time.Now()).Restart
}

// follow is the foreground loop: print logs as they come, observe on
// every event (and every logsObserve), react to signals and exits, until
// no watched container is left running.
func (u *attachedUp) follow() error {
	defer func() {
		if u.logs != nil {
			u.logs.close()
		}
	}()
	if err := u.observe(true); err != nil {
		return err
	}
	u.printAttaching()
	poll := time.NewTicker(logsPoll)
	defer poll.Stop()
	last := time.Now()
	for {
		u.drain()
		u.flushExits(false)
		if u.done() {
			break
		}
		now := false
		select {
		case <-u.sigs:
			u.interrupt()
		case <-u.wake:
			now = true
		case err := <-u.stopDone:
			u.stopped(err)
		case <-poll.C:
		}
		if now || time.Since(last) >= logsObserve {
			last = time.Now()
			u.observeAgain()
		}
	}
	u.drain()
	u.flushExits(true)
	return u.result()
}

// done: nothing watched is live or about to be printed, and no stop is
// under way. Killed containers that are never seen gone stop the wait
// after killWait.
func (u *attachedUp) done() bool {
	if !u.killedAt.IsZero() && time.Since(u.killedAt) > killWait {
		return true
	}
	return u.exits.Live() == 0 && len(u.pending) == 0 && (!u.stopping || !u.killedAt.IsZero())
}

func (u *attachedUp) observe(first bool) error {
	st, err := u.c.Observe(u.ctx, u.project)
	if err != nil {
		return err
	}
	if u.logs != nil {
		if err := u.logs.observed(u.ctx, st, first); err != nil {
			return err
		}
	}
	now := time.Now()
	for _, ctr := range u.exits.Update(st.ProjectContainers(u.project)) {
		u.pending = append(u.pending, pendingExit{ctr: ctr, seen: now})
	}
	return nil
}

// observeAgain keeps following through a containerd that is briefly away,
// saying so once.
func (u *attachedUp) observeAgain() {
	err := u.observe(false)
	switch {
	case err == nil:
		u.observeErr = false
	case !u.observeErr:
		u.observeErr = true
		fmt.Fprintf(u.a.stderr, "warning: cannot observe project %s for now (still following): %v\n", u.project, err)
	}
}

func (u *attachedUp) drain() {
	if u.logs == nil {
		return
	}
	err := u.logs.drain()
	if err != nil && !u.drainErr {
		fmt.Fprintf(u.a.stderr, "warning: reading logs: %v\n", err)
	}
	u.drainErr = err != nil
}

// printAttaching is compose's first line: the containers whose logs follow.
func (u *attachedUp) printAttaching() {
	if u.logs == nil || len(u.logs.order) == 0 {
		return
	}
	names := make([]string, 0, len(u.logs.order))
	for _, fl := range u.logs.order {
		names = append(names, fl.name)
	}
	fmt.Fprintf(u.a.stdout, "Attaching to %s\n", strings.Join(names, ", "))
}

// flushExits prints the exits seen at least exitDelay ago (all of them
// with force) and acts on each.
func (u *attachedUp) flushExits(force bool) {
	var keep []pendingExit
	for _, p := range u.pending {
		if !force && time.Since(p.seen) < exitDelay {
			keep = append(keep, p)
			continue
		}
		u.printExit(p.ctr)
		u.onExit(p.ctr)
	}
	u.pending = keep
	_ = u.printer.flush()
}

// printExit is compose's status line, in the container's colour.
func (u *attachedUp) printExit(ctr engine.Container) {
	name := logName(ctr)
	line := fmt.Sprintf("%s exited with code %d", name, ctr.ExitCode)
	if col := u.printer.colors[name]; u.printer.color && col != "" {
		line = "\033[" + col + "m" + line + "\033[0m"
	}
	u.printer.w.WriteString(line + "\n")
}

// onExit records the exit code up returns and starts the abort that
// --abort-on-container-exit / --abort-on-container-failure ask for.
func (u *attachedUp) onExit(ctr engine.Container) {
	trigger := !u.aborted && !u.stopping &&
		(u.flags.abortOnExit || u.flags.abortOnFailure && ctr.ExitCode != 0)
	if trigger {
		u.aborted = true
		u.exitCode = ctr.ExitCode
	}
	if u.flags.exitCodeFrom == ctr.Service && !u.codeFrom {
		u.codeFrom = true
		u.exitCode = ctr.ExitCode
	}
	if trigger {
		_ = u.printer.flush()
		fmt.Fprintln(u.a.stdout, "Aborting on container exit...")
		u.beginStop()
	}
}

// interrupt is Ctrl-C: the first stops the project gracefully, the second
// kills it.
func (u *attachedUp) interrupt() {
	if !u.interrupted {
		u.interrupted = true
		_ = u.printer.flush()
		fmt.Fprintln(u.a.stderr, "Gracefully stopping... (press Ctrl+C again to force)")
		u.beginStop()
		return
	}
	if u.killedAt.IsZero() {
		u.kill()
	}
}

// beginStop stops the project in the background, honouring each service's
// stop_signal and stop_grace_period (or up's -t).
func (u *attachedUp) beginStop() {
	if u.stopping {
		return
	}
	u.stopping = true
	u.exits.NoRestarts()
	u.stopDone = make(chan error, 1)
	go func() { u.stopDone <- u.stopProject(u.ctx) }()
}

func (u *attachedUp) stopProject(ctx context.Context) error {
	unlock, err := u.a.lockProject(ctx, u.c, u.project)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := u.c.Observe(ctx, u.project)
	if err != nil {
		return err
	}
	plan := reconcile.ComputeStop(st, u.project, reconcile.LifecycleOptions{Services: u.stop, Timeout: u.timeout})
	if plan.Empty() {
		return nil
	}
	return u.a.apply(ctx, u.c, plan, "Stopping", true)
}

// stopped takes the result of the graceful stop.
func (u *attachedUp) stopped(err error) {
	u.stopDone, u.stopping = nil, false
	if err != nil {
		u.errs = append(u.errs, err)
	}
}

// kill is the second Ctrl-C: every live container of the stopped services
// gets SIGKILL (the graceful stop under way then sees them exit and ends).
func (u *attachedUp) kill() {
	u.killedAt = time.Now()
	u.exits.NoRestarts()
	ctrs, err := u.a.selectContainers(u.ctx, u.c, u.project, u.stop, false, isLive)
	if err != nil {
		u.errs = append(u.errs, err)
		return
	}
	for _, ctr := range ctrs {
		if err := u.c.KillContainer(u.ctx, ctr.ID, syscall.SIGKILL); err != nil && !errors.Is(err, ctrd.ErrNotRunning) {
			u.errs = append(u.errs, fmt.Errorf("kill %s: %w", ctr.Name, err))
			continue
		}
		fmt.Fprintf(u.a.stderr, " Container %s  Killed\n", ctr.Name)
	}
}

// result is compose's exit status: 130 after Ctrl-C, else the exit code
// recorded by an abort or --exit-code-from, else 0; errors are joined.
func (u *attachedUp) result() error {
	err := errors.Join(u.errs...)
	switch {
	case u.interrupted:
		return exitError{code: 130, err: err}
	case u.exitCode != 0:
		return exitError{code: u.exitCode, err: err}
	}
	return err
}
