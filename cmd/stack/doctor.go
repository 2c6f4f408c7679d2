package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine/ctrd"
)

func newDoctorCommand(a *app) *cobra.Command {
	var cniDirs []string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the host's prerequisites, one line each, with the command that fixes what is missing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			checks := ctrd.Diagnose(cmd.Context(), ctrd.DoctorOptions{
				Address:       a.opts.address,
				StateDir:      a.opts.stateDir,
				CNIPluginDirs: cniDirs,
			})
			if renderChecks(a, checks) {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&cniDirs, "cni-plugin-dir", cniPluginDirs(), "Directories searched for CNI plugins (STACK_CNI_PATH)")
	return cmd
}

// cniPluginDirs honours STACK_CNI_PATH, else Debian's and upstream's locations.
func cniPluginDirs() []string {
	if v := os.Getenv("STACK_CNI_PATH"); v != "" {
		return filepath.SplitList(v)
	}
	return []string{"/usr/lib/cni", "/opt/cni/bin"}
}

// renderChecks prints one line per check and reports whether one blocks.
func renderChecks(a *app, checks []ctrd.Check) (blocked bool) {
	for _, c := range checks {
		mark := "ok  "
		switch {
		case c.OK:
		case c.Blocking:
			mark, blocked = "FAIL", true
		default:
			mark = "warn"
		}
		line := fmt.Sprintf("%s  %-16s %s", mark, c.Name, c.Detail)
		if !c.OK && c.Fix != "" {
			line += "  → fix: " + c.Fix
		}
		fmt.Fprintln(a.stdout, line)
	}
	return blocked
}
