package main

import (
	"github.com/spf13/cobra"
)

func newDoctorCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check the host's prerequisites, one line each, with the command that fixes what is missing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDoctor(cmd, a)
		},
	}
}

func runDoctor(cmd *cobra.Command, a *app) error {
	return nil
}
