package main

import (
	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine/ctrd"
)

func init() { registerCommand(newIOHoldCommand) }

// newIOHoldCommand is the detached process that keeps the stdin of a
// stdin_open container open and logs its output (see ctrd.IOHoldCommand).
// Hidden: stack starts it, users never call it.
func newIOHoldCommand(*app) *cobra.Command {
	return &cobra.Command{
		Use:    ctrd.IOHoldCommand + " CONFIG",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return ctrd.RunIOHold(args[0])
		},
	}
}
