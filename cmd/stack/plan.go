package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { registerCommand(newPlanCommand) }

func newPlanCommand(a *app) *cobra.Command {
	var f convergeFlags
	var format string
	var detailedExitCode bool
	cmd := &cobra.Command{
		Use:   "plan [SERVICE...]",
		Short: "Show what `up` would change, and change nothing",
		Long: "Show what `up` would change, like a terraform plan. Exit status 0 either way, or with\n" +
			"--detailed-exitcode: 0 when nothing would change, 2 when something would.",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			desired, err := a.loadDesired(ctx, &f, args)
			if err != nil {
				return err
			}
			c, err := a.client(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			cv, err := a.computeUp(ctx, c, desired, &f, args)
			if err != nil {
				return err
			}
			switch format {
			case "json":
				b, err := cv.plan.JSON()
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, string(b))
			case "text", "":
				fmt.Fprint(a.stdout, cv.plan.String())
			default:
				return fmt.Errorf("unknown --format %q: use text or json", format)
			}
			if detailedExitCode && !cv.plan.Empty() {
				return exitError{code: 2}
			}
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&format, "format", "text", "Output format: text or json")
	cmd.Flags().BoolVar(&detailedExitCode, "detailed-exitcode", false, "Exit 2 when the plan has changes, 0 when it is empty")
	return cmd
}
