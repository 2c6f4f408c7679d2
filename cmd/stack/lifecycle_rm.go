package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/reconcile"
)

func init() { registerCommand(newRmCommand) }

type rmOptions struct {
	force   bool
	stop    bool
	volumes bool
}

func newRmCommand(a *app) *cobra.Command {
	var o rmOptions
	cmd := &cobra.Command{
		Use:   "rm [SERVICE...]",
		Short: "Remove stopped service containers (and stopped one-off containers)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runRm(cmd.Context(), o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.force, "force", "f", false, "Don't ask to confirm removal")
	f.BoolVarP(&o.stop, "stop", "s", false, "Stop the containers, if required, before removing")
	f.BoolVarP(&o.volumes, "volumes", "v", false, "Remove any anonymous volumes attached to containers")
	// -f is --force here, as in compose; --file stays available by name.
	f.StringArrayVar(&a.opts.files, "file", a.opts.files, "Compose configuration files")
	return cmd
}

func (a *app) runRm(ctx context.Context, o rmOptions, services []string) error {
	project, c, err := a.projectClient(ctx, services)
	if err != nil {
		return err
	}
	defer c.Close()
	unlock, err := a.lockUnlessDryRun(ctx, c, project)
	if err != nil {
		return err
	}
	defer unlock()
	if o.stop && !a.opts.dryRun {
		state, err := c.Observe(ctx, project)
		if err != nil {
			return err
		}
		if plan := reconcile.ComputeStop(state, project, reconcile.LifecycleOptions{Services: services}); !plan.Empty() {
			if err := a.apply(ctx, c, plan, "Stopping", true); err != nil {
				return err
			}
		}
	}
	stopped := func(c engine.Container) bool {
		return c.Status == engine.StatusCreated || c.Status == engine.StatusExited || o.stop && a.opts.dryRun
	}
	ctrs, err := a.selectContainers(ctx, c, project, services, true, stopped)
	if err != nil {
		return err
	}
	if len(ctrs) == 0 {
		fmt.Fprintln(a.stderr, "No stopped containers")
		return nil
	}
	names := make([]string, len(ctrs))
	for i, ctr := range ctrs {
		names[i] = ctr.Name
	}
	if !o.force && !a.opts.dryRun {
		ok, err := confirm(a.stdin, a.stderr, rmCanPrompt(a.stdin), "Going to remove "+strings.Join(names, ", "))
		if err != nil || !ok {
			return err
		}
	}
	var errs []error
	for _, ctr := range ctrs {
		if a.opts.dryRun {
			fmt.Fprintf(a.stderr, "DRY-RUN MODE - Container %s  Removing\n", ctr.Name)
			continue
		}
		var vols []string
		if o.volumes {
			if vols, err = c.AnonymousVolumes(ctx, ctr.ID); err != nil {
				errs = append(errs, err)
			}
		}
		if err := c.RemoveContainer(ctx, ctr.ID); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ctr.Name, err))
			continue
		}
		fmt.Fprintf(a.stderr, " Container %s  Removed\n", ctr.Name)
		for _, v := range vols {
			if err := c.RemoveVolume(ctx, v); err != nil {
				errs = append(errs, fmt.Errorf("anonymous volume %s of %s: %w", v, ctr.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// confirm asks question with compose's "[yN]" on a terminal. Without one it
// refuses, so that a script never removes what it did not mean to.
func confirm(in io.Reader, out io.Writer, tty bool, question string) (bool, error) {
	if !tty {
		return false, fmt.Errorf("%s: not confirmed: stdin is not a terminal, pass -f (--force) to remove without asking", question)
	}
	fmt.Fprintf(out, "%s. Are you sure? [yN] ", question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(out)
		return false, nil
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// rmCanPrompt reports whether r is a terminal (not merely a character device
// such as /dev/null).
func rmCanPrompt(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
