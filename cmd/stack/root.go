package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine/ctrd"
)

// globalOptions are the flags every command accepts, named as compose names them.
type globalOptions struct {
	files            []string
	projectName      string
	projectDirectory string
	envFiles         []string
	profiles         []string
	progress         string
	ansi             string
	parallel         int
	dryRun           bool

	address   string
	namespace string
	stateDir  string
	debug     bool
}

// app is shared by every command: options plus the streams to render to.
type app struct {
	opts   globalOptions
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// isDaemon is set by `stack daemon`, which must not revive itself.
	isDaemon bool
	// notes holds the daemon's notes while it starts beside an apply
	// (startDaemonBeside), so that they do not break the progress lines.
	notes heldNotes
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "stack",
		Short:         "Run compose stacks on containerd, without a Docker daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Global flags before the command name are the root's, so that
		// `stack -f x.yaml logs -f` reads the second -f as logs' --follow.
		TraverseChildren: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	a.bindGlobalFlags(root)
	root.PersistentPreRun = func(*cobra.Command, []string) { quietContainerdLog(a) }
	root.AddCommand(
		newVersionCommand(a),
		newDoctorCommand(a),
	)
	for _, add := range extraCommands {
		root.AddCommand(add(a))
	}
	return root
}

// extraCommands lets each command file register itself, keeping root.go
// free of a list that every new command has to edit.
var extraCommands []func(*app) *cobra.Command

func registerCommand(f func(*app) *cobra.Command) { extraCommands = append(extraCommands, f) }

func (a *app) bindGlobalFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	o := &a.opts
	f.StringArrayVarP(&o.files, "file", "f", envList("COMPOSE_FILE", pathListSeparator), "Compose configuration files")
	f.StringVarP(&o.projectName, "project-name", "p", os.Getenv("COMPOSE_PROJECT_NAME"), "Project name")
	f.StringVar(&o.projectDirectory, "project-directory", "", "Alternate working directory (default: the directory of the first compose file)")
	f.StringArrayVar(&o.envFiles, "env-file", envList("COMPOSE_ENV_FILES", ","), "Alternate environment files")
	f.StringArrayVar(&o.profiles, "profile", envList("COMPOSE_PROFILES", ","), "Profiles to enable")
	f.StringVar(&o.progress, "progress", envOr("COMPOSE_PROGRESS", "auto"), "Progress output: auto, tty, plain, json, quiet")
	f.StringVar(&o.ansi, "ansi", envOr("COMPOSE_ANSI", "auto"), "Control characters: never, always, auto")
	f.IntVar(&o.parallel, "parallel", -1, "Maximum parallel operations (-1: 2 × cores)")
	f.BoolVar(&o.dryRun, "dry-run", false, "Print what would change and change nothing")
	f.StringVar(&o.address, "address", envOr("STACK_CONTAINERD_ADDRESS", ctrd.DefaultAddress), "containerd socket")
	f.StringVar(&o.namespace, "namespace", envOr("STACK_NAMESPACE", ctrd.DefaultNamespace), "containerd namespace")
	f.StringVar(&o.stateDir, "state-dir", envOr("STACK_STATE_DIR", ctrd.DefaultStateDir), "State directory (networks, volumes, logs)")
	f.BoolVar(&o.debug, "debug", os.Getenv("STACK_DEBUG") != "", "Log debug details to stderr")
}

const pathListSeparator = string(os.PathListSeparator)

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func envList(key, sep string) []string {
	v := os.Getenv(key)
	if v == "" {
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, sep) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (a *app) logger() *slog.Logger {
	if !a.opts.debug {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (a *app) clientOptions() ctrd.Options {
	return ctrd.Options{
		Address:   a.opts.address,
		Namespace: a.opts.namespace,
		StateDir:  a.opts.stateDir,
		Logger:    a.logger(),
	}
}

// client connects to containerd. When nothing answers on the address and
// containerd is installed, it starts one (detached, state under the stack
// state directory) and says so in one line.
func (a *app) client(ctx context.Context) (*ctrd.Client, error) {
	return a.clientFrom(ctx, ctrd.Dial(ctx, a.clientOptions()))
}

// clientAfter connects to containerd while load runs, and returns the
// client once load has succeeded: connecting only reads, so bad input still
// fails before anything on the host is touched.
func (a *app) clientAfter(ctx context.Context, load func() error) (*ctrd.Client, error) {
	dialing := ctrd.Dial(ctx, a.clientOptions())
	if err := load(); err != nil {
		dialing.Abandon()
		return nil, err
	}
	return a.clientFrom(ctx, dialing)
}

// clientFrom is client for a connection dialled earlier.
func (a *app) clientFrom(ctx context.Context, dialing *ctrd.Dialing) (*ctrd.Client, error) {
	opts := a.clientOptions()
	c, err := dialing.Client()
	if err == nil {
		a.reviveDaemon(ctx)
	}
	if err == nil || !errors.Is(err, ctrd.ErrUnreachable) {
		return c, err
	}
	if startErr := ctrd.StartDaemon(ctx, opts.Address, opts.StateDir); startErr != nil {
		if errors.Is(startErr, ctrd.ErrNoContainerd) {
			return nil, fmt.Errorf("%w; %w", err, startErr)
		}
		return nil, fmt.Errorf("%w; starting one failed: %w", err, startErr)
	}
	fmt.Fprintf(a.stderr, "containerd was not running: started one on %s (state in %s/containerd)\n", opts.Address, opts.StateDir)
	return ctrd.New(ctx, opts)
}
