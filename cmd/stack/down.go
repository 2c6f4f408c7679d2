package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/reconcile"
)

func init() { registerCommand(newDownCommand) }

func newDownCommand(a *app) *cobra.Command {
	var o reconcile.DownOptions
	var timeout int
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop and remove containers and networks (and volumes with -v)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			o.Timeout = stopTimeout(timeout)
			// down works without the compose file, from the labels; with
			// the file it also knows external resources and orphans.
			var desired *compose.Desired
			project := ""
			if d, err := a.loadProject(ctx, nil, nil, false); err == nil {
				desired, project = &d, d.Project
			} else if project, err = a.projectName(ctx); err != nil {
				return err
			}
			return a.applyProjectPlan(ctx, project, "Running", "nothing to do", func(st engine.State) (reconcile.Plan, error) {
				return reconcile.ComputeDown(st, project, o, desired)
			})
		},
	}
	cmd.Flags().BoolVarP(&o.Volumes, "volumes", "v", false, "Remove named volumes declared in the volumes section of the Compose file")
	cmd.Flags().BoolVar(&o.RemoveOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	cmd.Flags().StringVar(&o.RMI, "rmi", "", `Remove images used by services: "local" or "all"`)
	cmd.Flags().IntVarP(&timeout, "timeout", "t", -1, "Shutdown timeout in seconds")
	return cmd
}

// stopTimeout maps -t: unset (-1) lets each container's stop_grace_period
// apply (reconcile's 0), and -t 0 stops at once (a negative timeout).
func stopTimeout(seconds int) time.Duration {
	switch {
	case seconds < 0:
		return 0
	case seconds == 0:
		return -1
	}
	return time.Duration(seconds) * time.Second
}
