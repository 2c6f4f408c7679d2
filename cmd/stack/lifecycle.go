package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
	"github.com/stackdev/stack/reconcile"
)

func init() {
	registerCommand(newStopCommand)
	registerCommand(newStartCommand)
	registerCommand(newRestartCommand)
}

func newStopCommand(a *app) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "stop [SERVICE...]",
		Short: "Stop running containers without removing them",
		RunE: func(cmd *cobra.Command, args []string) error {
			o := reconcile.LifecycleOptions{Services: args, Timeout: stopTimeout(timeout)}
			return a.runLifecycle(cmd.Context(), args, "Stopping", func(st engine.State, project string) (reconcile.Plan, error) {
				return reconcile.ComputeStop(st, project, o), nil
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "timeout", "t", -1, "Shutdown timeout in seconds")
	return cmd
}

func newStartCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "start [SERVICE...]",
		Short: "Start existing containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			o := reconcile.LifecycleOptions{Services: args}
			return a.runLifecycle(cmd.Context(), args, "Starting", func(st engine.State, project string) (reconcile.Plan, error) {
				return reconcile.ComputeStart(st, project, o)
			})
		},
	}
}

func newRestartCommand(a *app) *cobra.Command {
	var timeout int
	var noDeps bool
	cmd := &cobra.Command{
		Use:   "restart [SERVICE...]",
		Short: "Restart service containers (configuration changes are not applied: use up)",
		RunE: func(cmd *cobra.Command, args []string) error {
			o := reconcile.LifecycleOptions{Services: args, Timeout: stopTimeout(timeout), NoDeps: noDeps}
			return a.runLifecycle(cmd.Context(), args, "Restarting", func(st engine.State, project string) (reconcile.Plan, error) {
				return reconcile.ComputeRestart(st, project, o)
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "timeout", "t", -1, "Shutdown timeout in seconds")
	cmd.Flags().BoolVar(&noDeps, "no-deps", false, "Don't restart dependent services")
	return cmd
}

// runLifecycle observes the project under its lock, plans with compute and
// applies the plan (or prints it with --dry-run).
func (a *app) runLifecycle(ctx context.Context, services []string, title string, compute func(engine.State, string) (reconcile.Plan, error)) error {
	project, err := a.checkServices(ctx, services)
	if err != nil {
		return err
	}
	return a.applyProjectPlan(ctx, project, title, "", func(st engine.State) (reconcile.Plan, error) {
		return compute(st, project)
	})
}

// applyProjectPlan is the shape every command that changes a project from
// its labels shares: take the project's lock, observe, plan, print the
// warnings, then print the plan (--dry-run) or apply it. onEmpty is what
// to say when there is nothing to do ("" says nothing).
func (a *app) applyProjectPlan(ctx context.Context, project, title, onEmpty string, compute func(engine.State) (reconcile.Plan, error)) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	unlock, err := a.lockUnlessDryRun(ctx, c, project)
	if err != nil {
		return err
	}
	defer unlock()
	state, err := c.Observe(ctx, project)
	if err != nil {
		return err
	}
	plan, err := compute(state)
	if err != nil {
		return err
	}
	printWarnings(a, plan.Warnings)
	if a.opts.dryRun {
		fmt.Fprint(a.stdout, plan.String())
		return nil
	}
	if plan.Empty() {
		if onEmpty != "" {
			fmt.Fprintln(a.stdout, onEmpty)
		}
		return nil
	}
	return a.apply(ctx, c, plan, title, true)
}

// checkServices returns the project name and, when the compose file loads,
// rejects service names it does not declare, as compose does. Without a
// compose file the commands work from the labels alone.
func (a *app) checkServices(ctx context.Context, services []string) (string, error) {
	if len(services) == 0 {
		return a.projectName(ctx)
	}
	d, err := a.loadProject(ctx, nil, nil, false)
	if err != nil {
		return a.projectName(ctx)
	}
	for _, s := range services {
		if !slices.Contains(d.Declared, s) {
			return "", fmt.Errorf("no such service: %s: the compose file declares %s", s, strings.Join(d.Declared, ", "))
		}
	}
	return d.Project, nil
}

// projectClient checks the named services against the project and connects
// to containerd: how every command on a project's containers begins. The
// caller closes the client.
func (a *app) projectClient(ctx context.Context, services []string) (string, *ctrd.Client, error) {
	var project string
	c, err := a.clientAfter(ctx, func() (err error) {
		project, err = a.checkServices(ctx, services)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return project, c, nil
}

// selectContainers returns the project's service containers (one-off ones
// too with oneOff) of the named services (all when none), by name, that
// keep accepts.
func (a *app) selectContainers(ctx context.Context, c *ctrd.Client, project string, services []string, oneOff bool, keep func(engine.Container) bool) ([]engine.Container, error) {
	state, err := c.Observe(ctx, project)
	if err != nil {
		return nil, err
	}
	var out []engine.Container
	for _, ctr := range state.ProjectContainers(project) {
		if ctr.OneOff && !oneOff || len(services) > 0 && !slices.Contains(services, ctr.Service) || !keep(ctr) {
			continue
		}
		out = append(out, ctr)
	}
	slices.SortFunc(out, func(x, y engine.Container) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

func isLive(c engine.Container) bool {
	return c.Status == engine.StatusRunning || c.Status == engine.StatusPaused
}
