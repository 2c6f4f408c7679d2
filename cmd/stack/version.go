package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine/ctrd"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func clientVersion() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return version
}

func newVersionCommand(a *app) *cobra.Command {
	var short bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the stack version and, when reachable, containerd's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if short {
				fmt.Fprintln(a.stdout, clientVersion())
				return nil
			}
			fmt.Fprintf(a.stdout, "stack version %s (%s, %s/%s)\n", clientVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			c, err := ctrd.New(cmd.Context(), a.clientOptions())
			if err != nil {
				fmt.Fprintf(a.stdout, "containerd: not reachable at %s\n", a.opts.address)
				return nil
			}
			defer c.Close()
			v, err := c.ServerVersion(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "containerd version %s (%s)\n", v, a.opts.address)
			return nil
		},
	}
	cmd.Flags().BoolVar(&short, "short", false, "Print the client version only")
	return cmd
}
