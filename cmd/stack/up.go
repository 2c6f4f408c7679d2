package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
	"github.com/stackdev/stack/reconcile"
)

func init() { registerCommand(newUpCommand) }

// convergeFlags are shared by up and plan: they decide what the plan holds.
type convergeFlags struct {
	forceRecreate      bool
	noRecreate         bool
	alwaysRecreateDeps bool
	noDeps             bool
	removeOrphans      bool
	noStart            bool
	pull               string
	scale              []string
	timeout            int
}

func (f *convergeFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.BoolVar(&f.forceRecreate, "force-recreate", false, "Recreate containers even if their configuration and image haven't changed")
	fs.BoolVar(&f.noRecreate, "no-recreate", false, "If containers already exist, don't recreate them")
	fs.BoolVar(&f.alwaysRecreateDeps, "always-recreate-deps", false, "Recreate dependent containers")
	fs.BoolVar(&f.noDeps, "no-deps", false, "Don't start linked services")
	fs.BoolVar(&f.removeOrphans, "remove-orphans", envBool("COMPOSE_REMOVE_ORPHANS"), "Remove containers for services not defined in the Compose file")
	fs.BoolVar(&f.noStart, "no-start", false, "Don't start the services after creating them")
	fs.StringVar(&f.pull, "pull", "", `Pull image before running ("always"|"missing"|"never")`)
	fs.StringArrayVar(&f.scale, "scale", nil, "Scale SERVICE to NUM instances (SERVICE=NUM); overrides scale in the Compose file")
	fs.IntVarP(&f.timeout, "timeout", "t", -1, "Stop timeout in seconds for containers being replaced (default: the service's stop_grace_period)")
}

func envBool(key string) bool {
	v, _ := strconv.ParseBool(envOr(key, "false"))
	return v
}

func (f *convergeFlags) validate() error {
	switch {
	case f.forceRecreate && f.noRecreate:
		return errors.New("--force-recreate and --no-recreate are incompatible")
	case f.alwaysRecreateDeps && f.noRecreate:
		return errors.New("--always-recreate-deps and --no-recreate are incompatible")
	}
	switch f.pull {
	case "", "always", "missing", "never":
		return nil
	}
	return fmt.Errorf("invalid --pull %q: use always, missing or never", f.pull)
}

func (f *convergeFlags) scaleMap() (map[string]int, error) {
	out := map[string]int{}
	for _, s := range f.scale {
		name, num, ok := strings.Cut(s, "=")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("invalid --scale %q: use SERVICE=NUM", s)
		}
		out[name] = n
	}
	return out, nil
}

func (f *convergeFlags) options(services []string) reconcile.Options {
	o := reconcile.Options{
		ForceRecreate:      f.forceRecreate,
		NoRecreate:         f.noRecreate,
		AlwaysRecreateDeps: f.alwaysRecreateDeps,
		NoDeps:             f.noDeps,
		RemoveOrphans:      f.removeOrphans,
		NoStart:            f.noStart,
		Pull:               engine.PullPolicy(f.pull),
		Services:           services,
	}
	o.Timeout = stopTimeout(f.timeout)
	return o
}

// converged is the result of load → observe → compute.
type converged struct {
	desired compose.Desired
	plan    reconcile.Plan
}

// loadDesired validates the flags and loads the project they select.
func (a *app) loadDesired(ctx context.Context, f *convergeFlags, services []string) (compose.Desired, error) {
	if err := f.validate(); err != nil {
		return compose.Desired{}, err
	}
	scale, err := f.scaleMap()
	if err != nil {
		return compose.Desired{}, err
	}
	return a.loadProject(ctx, services, scale, f.noDeps)
}

// computeUp observes the project and computes the plan that converges it.
func (a *app) computeUp(ctx context.Context, c *ctrd.Client, desired compose.Desired, f *convergeFlags, services []string) (converged, error) {
	state, err := c.Observe(ctx, desired.Project)
	if err != nil {
		return converged{}, err
	}
	return computeFrom(desired, state, f, services)
}

func computeFrom(desired compose.Desired, state engine.State, f *convergeFlags, services []string) (converged, error) {
	plan, err := reconcile.Compute(desired, state, f.options(services))
	if err != nil {
		return converged{}, fmt.Errorf("plan project %s: %w", desired.Project, err)
	}
	return converged{desired: desired, plan: plan}, nil
}

type upFlags struct {
	convergeFlags
	detach      bool
	yes         bool
	quietPull   bool
	wait        bool
	waitTimeout int
	attached    attachedFlags
}

func newUpCommand(a *app) *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "up [SERVICE...]",
		Short: "Create and start containers: make the host match the compose file",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runUp(cmd.Context(), &f, args)
		},
	}
	f.bind(cmd)
	cmd.Flags().BoolVarP(&f.detach, "detach", "d", false, "Detached mode: run containers in the background")
	cmd.Flags().BoolVarP(&f.yes, "yes", "y", false, `Assume "yes" as answer to all prompts`)
	cmd.Flags().BoolVar(&f.quietPull, "quiet-pull", false, "Pull without printing progress information")
	cmd.Flags().BoolVar(&f.wait, "wait", false, "Wait for services to be running|healthy. Implies detached mode.")
	cmd.Flags().IntVar(&f.waitTimeout, "wait-timeout", 0, "Maximum duration in seconds to wait for the project to be running|healthy")
	f.attached.bind(cmd)
	return cmd
}

func (a *app) runUp(ctx context.Context, f *upFlags, services []string) error {
	// Load before anything is touched or waited for, so that bad input
	// fails first.
	var (
		desired compose.Desired
		att     *attachedUp // nil: detached
	)
	c, err := a.clientAfter(ctx, func() (err error) {
		if desired, err = a.loadDesired(ctx, &f.convergeFlags, services); err != nil {
			return err
		}
		att, err = a.newAttachedUp(f, desired, services)
		return err
	})
	if err != nil {
		return err
	}
	defer c.Close()
	unlock, err := a.lockUnlessDryRun(ctx, c, desired.Project)
	if err != nil {
		return err
	}
	defer unlock()
	state, err := c.Observe(ctx, desired.Project)
	if err != nil {
		return err
	}
	if !a.opts.dryRun {
		if state, err = a.pullFirst(ctx, c, desired, state, &f.convergeFlags, services, f.quietPull); err != nil {
			return err
		}
	}
	cv, err := computeFrom(desired, state, &f.convergeFlags, services)
	if err != nil {
		return err
	}
	printWarnings(a, cv.plan.Warnings)
	if a.opts.dryRun {
		fmt.Fprint(a.stdout, cv.plan.String())
		return nil
	}
	if cv.plan.Empty() {
		// Nothing changed, so the daemon's names are current; a.client
		// already brought it back if it had died.
		fmt.Fprintln(a.stdout, "nothing to do")
		if att != nil {
			return att.run(ctx, c, unlock, nil)
		}
		return a.upWaitIf(ctx, c, desired, f)
	}
	if err := preflight(ctx, c, cv.plan); err != nil {
		return err
	}
	daemonStarted := a.startDaemonBeside(ctx, desired)
	err = a.applyWaiting(ctx, c, cv.plan, "Running", f.quietPull, a.waitHook(c, desired.Project))
	daemonStarted()
	a.serveNames(ctx, desired)
	if att != nil {
		return att.run(ctx, c, unlock, err)
	}
	if err != nil {
		return err
	}
	return a.upWaitIf(ctx, c, desired, f)
}

// upWaitIf is --wait and --wait-timeout.
func (a *app) upWaitIf(ctx context.Context, c *ctrd.Client, desired compose.Desired, f *upFlags) error {
	if !f.wait {
		return nil
	}
	return a.upWait(ctx, c, desired, time.Duration(f.waitTimeout)*time.Second)
}

// preflight finds what would fail halfway through the plan — a host port
// already taken — before anything changes.
func preflight(ctx context.Context, c *ctrd.Client, plan reconcile.Plan) error {
	var specs []engine.ContainerSpec
	for _, s := range plan.Steps {
		if s.Kind == reconcile.KindCreateContainer && len(s.Container.Network.Ports) > 0 {
			specs = append(specs, s.Container)
		}
	}
	if len(specs) == 0 {
		return nil
	}
	all, err := c.Observe(ctx, "")
	if err != nil {
		return err
	}
	if err := ctrd.CheckHostPorts(specs, all); err != nil {
		return fmt.Errorf("nothing was changed:\n%w", err)
	}
	return nil
}

// pullFirst applies the pulls the plan needs before the plan itself, so
// that an image pulled anew (--pull always, pull_policy: always) is compared
// by digest in the same run and recreates what runs an older one.
// It returns the state to plan from: observed again only when it pulled.
func (a *app) pullFirst(ctx context.Context, c *ctrd.Client, desired compose.Desired, state engine.State, f *convergeFlags, services []string, quiet bool) (engine.State, error) {
	pulls, err := reconcile.ComputePulls(desired, state, f.options(services))
	if err != nil || pulls.Empty() {
		return state, err
	}
	if err := a.apply(ctx, c, pulls, "Pulling", quiet); err != nil {
		return state, err
	}
	f.pull = string(engine.PullMissing)
	return c.Observe(ctx, desired.Project)
}

// lockUnlessDryRun takes the project's lock for a command that changes it;
// a dry run changes nothing, so it neither takes the lock nor waits for it.
func (a *app) lockUnlessDryRun(ctx context.Context, c *ctrd.Client, project string) (func(), error) {
	if a.opts.dryRun {
		return func() {}, nil
	}
	return a.lockProject(ctx, c, project)
}

func (a *app) lockProject(ctx context.Context, c *ctrd.Client, project string) (func(), error) {
	return c.LockProject(ctx, project, func() {
		fmt.Fprintf(a.stderr, "waiting for another stack command changing project %q to finish...\n", project)
	})
}

func printWarnings(a *app, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintln(a.stderr, "WARN", w)
	}
}

func (a *app) apply(ctx context.Context, c *ctrd.Client, plan reconcile.Plan, title string, quietPull bool) error {
	return a.applyWaiting(ctx, c, plan, title, quietPull, nil)
}

// applyWaiting is apply with wait gating the plan's wait steps (nil: order
// only).
func (a *app) applyWaiting(ctx context.Context, c *ctrd.Client, plan reconcile.Plan, title string, quietPull bool, wait func(context.Context, string, []string) error) error {
	p := newProgress(a, title)
	opts := reconcile.ApplyOptions{Parallel: a.opts.parallel, OnEvent: p.OnEvent, Wait: wait}
	if !quietPull {
		opts.PullProgress = p.pullProgress
	}
	if err := reconcile.Apply(ctx, c, plan, opts); err != nil {
		return fmt.Errorf("%w\nthe host is partly converged: run the same command again to finish", err)
	}
	return nil
}
