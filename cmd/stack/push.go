package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine/ctrd"
)

func init() { registerCommand(newPushCommand) }

func newPushCommand(a *app) *cobra.Command {
	var f registryFlags
	cmd := &cobra.Command{
		Use:   "push REF",
		Short: "Push a local image to the registry its name points at",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.config(a)
			if err != nil {
				return err
			}
			c, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			report, finish := f.progress(a)
			dgst, err := c.Push(cmd.Context(), args[0], ctrd.PushConfig{Registry: cfg, Progress: report})
			finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: digest: %s\n", ctrd.FamiliarRef(args[0]), dgst)
			return nil
		},
	}
	f.bind(cmd)
	return cmd
}
