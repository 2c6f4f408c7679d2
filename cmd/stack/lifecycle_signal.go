package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func init() {
	registerCommand(newKillCommand)
	registerCommand(newPauseCommand)
	registerCommand(newUnpauseCommand)
}

func newKillCommand(a *app) *cobra.Command {
	var sig string
	var removeOrphans bool
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] [SERVICE...]",
		Short: "Force stop service containers (send a signal to their processes)",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := ctrd.ParseSignal(sig)
			if err != nil {
				return fmt.Errorf("kill -s %s: %w", sig, err)
			}
			if removeOrphans {
				if err := a.removeOrphans(cmd.Context()); err != nil {
					return err
				}
			}
			// A container waiting for its restart policy's backoff has no
			// process to signal: its restart is cancelled instead.
			awaiting := map[string]bool{}
			keep := func(c engine.Container) bool {
				if !isLive(c) && awaitsRestart(c) {
					awaiting[c.ID] = true
				}
				return isLive(c) || awaiting[c.ID]
			}
			return a.eachContainer(cmd.Context(), args, keep, "Killing", "Killed", func(ctx context.Context, c *ctrd.Client, id string) error {
				if awaiting[id] {
					return c.CancelRestart(ctx, id)
				}
				return c.KillContainer(ctx, id, s)
			})
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "SIGKILL", "SIGNAL to send to the container")
	cmd.Flags().BoolVar(&removeOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	return cmd
}

// awaitsRestart reports whether the daemon may start an exited container
// again for its restart policy: it ran and the user has not stopped it.
func awaitsRestart(c engine.Container) bool {
	p := c.Restart.Name
	return c.Status != engine.StatusRunning && c.Status != engine.StatusPaused &&
		p != "" && p != "no" && !c.UserStopped && !c.StartedAt.IsZero()
}

func newPauseCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "pause [SERVICE...]",
		Short: "Pause services (freeze their processes)",
		RunE: func(cmd *cobra.Command, args []string) error {
			running := func(c engine.Container) bool { return c.Status == engine.StatusRunning }
			return a.eachContainer(cmd.Context(), args, running, "Pausing", "Paused", func(ctx context.Context, c *ctrd.Client, id string) error {
				return c.PauseContainer(ctx, id)
			})
		},
	}
}

func newUnpauseCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "unpause [SERVICE...]",
		Short: "Unpause services",
		RunE: func(cmd *cobra.Command, args []string) error {
			paused := func(c engine.Container) bool { return c.Status == engine.StatusPaused }
			return a.eachContainer(cmd.Context(), args, paused, "Unpausing", "Unpaused", func(ctx context.Context, c *ctrd.Client, id string) error {
				return c.UnpauseContainer(ctx, id)
			})
		},
	}
}

// eachContainer applies do to every container of the named services that
// keep accepts, one line per container on stderr as compose prints them.
// It goes on after a failure and returns every error.
func (a *app) eachContainer(ctx context.Context, services []string, keep func(engine.Container) bool, doing, done string,
	do func(context.Context, *ctrd.Client, string) error) error {
	return a.withContainers(ctx, services, keep, func(c *ctrd.Client, ctrs []engine.Container) error {
		var errs []error
		for _, ctr := range ctrs {
			if a.opts.dryRun {
				fmt.Fprintf(a.stderr, "DRY-RUN MODE - Container %s  %s\n", ctr.Name, doing)
				continue
			}
			if err := do(ctx, c, ctr.ID); err != nil {
				fmt.Fprintf(a.stderr, " Container %s  Error\n", ctr.Name)
				errs = append(errs, fmt.Errorf("%s: %w", ctr.Name, err))
				continue
			}
			fmt.Fprintf(a.stderr, " Container %s  %s\n", ctr.Name, done)
		}
		return errors.Join(errs...)
	})
}

// removeOrphans removes the project's containers of services the compose
// file does not declare.
func (a *app) removeOrphans(ctx context.Context) error {
	d, err := a.loadProject(ctx, nil, nil, false)
	if err != nil {
		return fmt.Errorf("--remove-orphans needs the compose file: %w", err)
	}
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	unlock, err := a.lockProject(ctx, c, d.Project)
	if err != nil {
		return err
	}
	defer unlock()
	orphan := func(ctr engine.Container) bool { return !slices.Contains(d.Declared, ctr.Service) }
	ctrs, err := a.selectContainers(ctx, c, d.Project, nil, true, orphan)
	if err != nil {
		return err
	}
	for _, ctr := range ctrs {
		if a.opts.dryRun {
			fmt.Fprintf(a.stderr, "DRY-RUN MODE - Container %s  Removing\n", ctr.Name)
			continue
		}
		if err := c.RemoveContainer(ctx, ctr.ID); err != nil {
			return fmt.Errorf("remove orphan %s: %w", ctr.Name, err)
		}
		fmt.Fprintf(a.stderr, " Container %s  Removed\n", ctr.Name)
	}
	return nil
}
