package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func init() { registerCommand(newExecCommand) }

type execFlags struct {
	detach     bool
	noTTY      bool
	user       string
	workdir    string
	env        []string
	privileged bool
	index      int
}

func newExecCommand(a *app) *cobra.Command {
	var f execFlags
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] SERVICE COMMAND [ARGS...]",
		Short: "Execute a command in a running container of a service",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runExec(cmd.Context(), f, args[0], args[1:])
		},
	}
	// Everything after SERVICE belongs to the command: `exec svc ls -l`.
	cmd.Flags().SetInterspersed(false)
	fs := cmd.Flags()
	fs.BoolVarP(&f.detach, "detach", "d", false, "Detached mode: run the command in the background")
	fs.BoolVarP(&f.noTTY, "no-TTY", "T", false, "Disable pseudo-TTY allocation (there is none anyway when stdin or stdout is not a terminal)")
	fs.StringVarP(&f.user, "user", "u", "", "Run the command as this user (name or uid[:gid])")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "Path to the working directory for this command")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "Set environment variables (KEY=VALUE, or KEY to pass it from here)")
	fs.BoolVar(&f.privileged, "privileged", false, "Give extended privileges to the process")
	fs.IntVar(&f.index, "index", 1, "Index of the container if the service has several replicas")
	return cmd
}

func (a *app) runExec(ctx context.Context, f execFlags, service string, args []string) error {
	project, err := a.projectName(ctx)
	if err != nil {
		return err
	}
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	target, err := a.execTarget(ctx, c, project, service, f.index)
	if err != nil {
		return err
	}
	opts := ctrd.ExecOptions{
		Args:       args,
		Env:        envFlags(f.env),
		User:       f.user,
		WorkingDir: f.workdir,
		Privileged: f.privileged,
		Detach:     f.detach,
		Stdout:     a.stdout,
		Stderr:     a.stderr,
	}
	tty := !f.noTTY && !f.detach && stdinIsTerminal(a) && isTTY(a.stdout)
	code, err := a.execAttached(ctx, c, target.ID, opts, tty)
	if err != nil && ctx.Err() != nil {
		return exitError{code: 130} // interrupted: the process was killed
	}
	if err != nil {
		return fmt.Errorf("exec in %s: %w", target.Name, err)
	}
	if code != 0 {
		return exitError{code: code}
	}
	return nil
}

// execTarget finds the running replica index of service, with errors that
// say what is wrong: no such service, not running, no such replica.
func (a *app) execTarget(ctx context.Context, c *ctrd.Client, project, service string, index int) (engine.Container, error) {
	st, err := c.Observe(ctx, project)
	if err != nil {
		return engine.Container{}, err
	}
	var replicas []engine.Container
	for _, ctr := range st.ProjectContainers(project) {
		if ctr.Service == service && !ctr.OneOff {
			replicas = append(replicas, ctr)
		}
	}
	if len(replicas) == 0 {
		if !a.serviceDeclared(ctx, service) {
			return engine.Container{}, fmt.Errorf("no such service: %s (project %s)", service, project)
		}
		return engine.Container{}, fmt.Errorf("service %q is not running: start it with `stack up -d %s`", service, service)
	}
	sort.Slice(replicas, func(i, j int) bool { return replicas[i].Number < replicas[j].Number })
	for _, ctr := range replicas {
		if ctr.Number != index {
			continue
		}
		if ctr.Status != engine.StatusRunning {
			return engine.Container{}, fmt.Errorf("service %q is not running: container %s is %s: start it with `stack up -d %s`", service, ctr.Name, ctr.Status, service)
		}
		return ctr, nil
	}
	return engine.Container{}, fmt.Errorf("service %q has no container with --index %d (it has %d): pick one of 1..%d", service, index, len(replicas), replicas[len(replicas)-1].Number)
}

// serviceDeclared says whether the compose files declare service; without
// readable compose files it cannot tell and says yes.
func (a *app) serviceDeclared(ctx context.Context, service string) bool {
	d, err := a.loadProject(ctx, nil, nil, false)
	if err != nil {
		return true
	}
	if _, ok := d.Service(service); ok {
		return true
	}
	for _, s := range d.Declared {
		if s == service {
			return true
		}
	}
	return false
}

// execAttached runs the exec; with tty the local terminal is put in raw
// mode and its size follows SIGWINCH.
func (a *app) execAttached(ctx context.Context, c *ctrd.Client, id string, opts ctrd.ExecOptions, tty bool) (int, error) {
	if opts.Detach {
		return c.Exec(ctx, id, opts)
	}
	if !tty {
		opts.Stdin = a.nonTerminalStdin()
		return c.Exec(ctx, id, opts)
	}
	in, sizes, restore, err := a.rawTerminal()
	if err != nil {
		return 0, err
	}
	defer restore()
	opts.TTY, opts.Stdin, opts.Resize = true, in, sizes
	return c.Exec(ctx, id, opts)
}

// rawTerminal puts the terminal on stdin in raw mode, so that keys such as
// Ctrl-C reach the container's TTY instead of signalling this process, and
// watches the size of the terminal on stdout. restore undoes both.
func (a *app) rawTerminal() (in *os.File, sizes <-chan [2]uint16, restore func(), err error) {
	in = a.stdin.(*os.File)
	old, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("put the terminal in raw mode: %w", err)
	}
	ch := make(chan [2]uint16, 1)
	stop := watchTerminalSize(a.stdout.(*os.File), ch)
	return in, ch, func() { stop(); _ = term.Restore(int(in.Fd()), old) }, nil
}

// nonTerminalStdin is the stdin to forward without a TTY: a pipe or file
// is, a terminal (exec -T from a shell) is not, as it would never end.
func (a *app) nonTerminalStdin() io.Reader {
	if a.stdin == nil || stdinIsTerminal(a) {
		return nil
	}
	return a.stdin
}

// watchTerminalSize sends the terminal's size now and on each SIGWINCH.
func watchTerminalSize(f *os.File, sizes chan<- [2]uint16) func() {
	send := func() {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil {
			select {
			case sizes <- [2]uint16{uint16(w), uint16(h)}:
			default:
			}
		}
	}
	send()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sig:
				send()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(sig); close(done) }
}

func stdinIsTerminal(a *app) bool { return isTTY(a.stdin) }

// isTTY reports whether v is a terminal (image.go's isTerminal accepts
// any character device, /dev/null included).
func isTTY(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// envFlags resolves -e values: KEY=VALUE as is, a bare KEY from this
// process's environment (left out when unset), as compose does.
func envFlags(values []string) []string {
	var out []string
	for _, v := range values {
		if strings.Contains(v, "=") {
			out = append(out, v)
		} else if val, ok := os.LookupEnv(v); ok {
			out = append(out, v+"="+val)
		}
	}
	return out
}
