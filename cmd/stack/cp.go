package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func init() { registerCommand(newCpCommand) }

type cpFlags struct {
	index      int
	all        bool
	archive    bool
	followLink bool
}

func newCpCommand(a *app) *cobra.Command {
	var f cpFlags
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] SERVICE:SRC_PATH DEST_PATH|-\n  stack cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH",
		Short: "Copy files/folders between a service container and the local filesystem",
		Long: `Copy files/folders between a service container and the local filesystem.

Paths follow docker cp: SRC ending in "/." copies a directory's content; a
directory copied to an existing directory lands inside it; "-" is a tar
stream on stdin or stdout. Container paths are relative to the container's
root. A copy to a service goes to each of its containers (--index picks
one); a copy from a service reads its first container.`,
		Args:                  cobra.ExactArgs(2),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runCp(cmd.Context(), f, args[0], args[1])
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&f.index, "index", 0, "Index of the container if service has multiple replicas")
	fs.BoolVar(&f.all, "all", false, "Include containers created by the run command")
	fs.BoolVarP(&f.archive, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	fs.BoolVarP(&f.followLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	fs.MarkDeprecated("all", "by default all the containers of the service get the source file/directory to be copied")
	return cmd
}

// splitCpArg splits SERVICE:PATH as compose does: an absolute path, or a
// relative one starting with ".", is local even with a colon in it.
func splitCpArg(arg string) (service, path string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	svc, p, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(svc, ".") {
		return "", arg
	}
	return svc, p
}

func (a *app) runCp(ctx context.Context, f cpFlags, srcArg, dstArg string) error {
	srcSvc, srcPath := splitCpArg(srcArg)
	dstSvc, dstPath := splitCpArg(dstArg)
	switch {
	case srcSvc != "" && dstSvc != "":
		return errors.New("copying between services is not supported: copy to the local filesystem first")
	case srcSvc == "" && dstSvc == "":
		return errors.New("one of the paths must name a service: SERVICE:PATH")
	case srcSvc != "" && f.all:
		return errors.New("cannot use the --all flag when copying from a service")
	case srcPath == "" || dstPath == "":
		return errors.New("empty path: give SERVICE:PATH with a path, or - for a tar stream")
	}
	service := srcSvc + dstSvc
	keep := func(c engine.Container) bool { return f.all || !c.OneOff }
	return a.withCpContainers(ctx, service, keep, func(c *ctrd.Client, ctrs []engine.Container) error {
		targets, err := cpTargets(service, ctrs, f.index, srcSvc != "")
		if err != nil {
			return err
		}
		if a.opts.dryRun {
			for _, ctr := range targets {
				fmt.Fprintf(a.stderr, "DRY-RUN MODE - Container %s  Copying %s\n", ctr.Name, cpDescription(ctr, srcSvc != "", srcPath, dstPath))
			}
			return nil
		}
		if srcSvc != "" {
			return a.cpFrom(ctx, c, targets[0], f, srcPath, dstPath)
		}
		return a.cpTo(ctx, c, targets, f, srcPath, dstPath)
	})
}

// withCpContainers is withContainers with one-off containers too.
func (a *app) withCpContainers(ctx context.Context, service string, keep func(engine.Container) bool, fn func(*ctrd.Client, []engine.Container) error) error {
	project, err := a.checkServices(ctx, []string{service})
	if err != nil {
		return err
	}
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	ctrs, err := a.selectContainers(ctx, c, project, []string{service}, true, keep)
	if err != nil {
		return err
	}
	return fn(c, ctrs)
}

// cpTargets picks the containers of a copy: --index's, else every one of
// the service (running or not) for a copy to it, the first for a copy from.
func cpTargets(service string, ctrs []engine.Container, index int, from bool) ([]engine.Container, error) {
	slices.SortStableFunc(ctrs, func(x, y engine.Container) int {
		if x.OneOff != y.OneOff { // service replicas first
			if x.OneOff {
				return 1
			}
			return -1
		}
		return x.Number - y.Number
	})
	if len(ctrs) == 0 {
		return nil, fmt.Errorf("no container found for service %q: create it with `stack up -d %s`", service, service)
	}
	if index > 0 {
		for _, c := range ctrs {
			if c.Number == index && !c.OneOff {
				return []engine.Container{c}, nil
			}
		}
		return nil, fmt.Errorf("service %q has no container with --index %d (it has %d)", service, index, len(ctrs))
	}
	if from {
		return ctrs[:1], nil
	}
	return ctrs, nil
}

// cpDescription says what a copy does, as compose's progress line does.
func cpDescription(ctr engine.Container, from bool, srcPath, dstPath string) string {
	if from {
		return fmt.Sprintf("%s:%s to %s", ctr.Name, srcPath, dstPath)
	}
	return fmt.Sprintf("%s to %s:%s", srcPath, ctr.Name, dstPath)
}

// cpDone reports a finished copy on stderr (stdout may carry the tar
// stream), unless --progress quiet.
func (a *app) cpDone(ctr engine.Container, from bool, srcPath, dstPath string) {
	if a.opts.progress != "quiet" {
		fmt.Fprintf(a.stderr, " Container %s  Copied %s\n", ctr.Name, cpDescription(ctr, from, srcPath, dstPath))
	}
}

func cpOptions(f cpFlags, ctr engine.Container) ctrd.CopyOptions {
	return ctrd.CopyOptions{FollowLink: f.followLink, Archive: f.archive, Name: ctr.Name}
}

func (a *app) cpFrom(ctx context.Context, c *ctrd.Client, ctr engine.Container, f cpFlags, srcPath, dstPath string) error {
	var err error
	if dstPath == "-" {
		err = c.ArchiveFromContainer(ctx, ctr.ID, srcPath, a.stdout, cpOptions(f, ctr))
	} else {
		err = c.CopyFromContainer(ctx, ctr.ID, srcPath, dstPath, cpOptions(f, ctr))
	}
	if err == nil {
		a.cpDone(ctr, true, srcPath, dstPath)
	}
	return err
}

func (a *app) cpTo(ctx context.Context, c *ctrd.Client, ctrs []engine.Container, f cpFlags, srcPath, dstPath string) error {
	stdin := func() io.Reader { return a.stdin }
	if srcPath == "-" && len(ctrs) > 1 {
		// Read once, extracted into every target; one target streams.
		data, err := io.ReadAll(a.stdin)
		if err != nil {
			return fmt.Errorf("read the tar stream from stdin: %w", err)
		}
		stdin = func() io.Reader { return bytes.NewReader(data) }
	}
	var errs []error
	for _, ctr := range ctrs {
		var err error
		if srcPath == "-" {
			err = c.ExtractToContainer(ctx, ctr.ID, stdin(), dstPath, cpOptions(f, ctr))
		} else {
			err = c.CopyToContainer(ctx, ctr.ID, srcPath, dstPath, cpOptions(f, ctr))
		}
		if err == nil {
			a.cpDone(ctr, false, srcPath, dstPath)
		} else if len(ctrs) > 1 {
			err = fmt.Errorf("copy to %s: %w", ctr.Name, err)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
