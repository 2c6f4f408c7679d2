package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
	"github.com/stackdev/stack/reconcile"
)

func init() { registerCommand(newWaitCommand) }

func newWaitCommand(a *app) *cobra.Command {
	var downProject bool
	cmd := &cobra.Command{
		Use:   "wait [SERVICE...]",
		Short: "Block until the first container of the services stops; exit with its exit code",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runWait(cmd.Context(), args, downProject)
		},
	}
	cmd.Flags().BoolVar(&downProject, "down-project", false, "Drop the project once the first container stops")
	return cmd
}

type waitResult struct {
	name string
	code int
	err  error
}

func (a *app) runWait(ctx context.Context, services []string, downProject bool) error {
	project, c, err := a.projectClient(ctx, services)
	if err != nil {
		return err
	}
	defer c.Close()
	all := func(engine.Container) bool { return true }
	ctrs, err := a.selectContainers(ctx, c, project, services, false, all)
	if err != nil {
		return err
	}
	if len(ctrs) == 0 {
		return fmt.Errorf("no containers for project %q to wait for: run `stack up` first", project)
	}
	first, err := waitFirst(ctx, c, ctrs)
	if err != nil {
		return err
	}
	if downProject {
		if err := a.downAfterWait(ctx, c, project); err != nil {
			return err
		}
	}
	if first.code != 0 {
		return exitError{code: first.code}
	}
	return nil
}

// waitFirst waits on every container at once and returns the first to stop.
func waitFirst(ctx context.Context, c *ctrd.Client, ctrs []engine.Container) (waitResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan waitResult, len(ctrs))
	for _, ctr := range ctrs {
		go func() {
			code, err := c.WaitContainer(ctx, ctr.ID)
			results <- waitResult{name: ctr.Name, code: code, err: err}
		}()
	}
	r := <-results
	if r.err != nil {
		return r, fmt.Errorf("wait for %s: %w", r.name, r.err)
	}
	return r, nil
}

// downAfterWait is `down` of the project from its labels.
func (a *app) downAfterWait(ctx context.Context, c *ctrd.Client, project string) error {
	unlock, err := a.lockProject(ctx, c, project)
	if err != nil {
		return err
	}
	defer unlock()
	state, err := c.Observe(ctx, project)
	if err != nil {
		return err
	}
	plan, err := reconcile.ComputeDown(state, project, reconcile.DownOptions{}, nil)
	if err != nil || plan.Empty() {
		return err
	}
	return a.apply(ctx, c, plan, "Running", true)
}
