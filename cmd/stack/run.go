package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/mattn/go-shellwords"
	"github.com/spf13/cobra"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func init() { registerCommand(newRunCommand) }

// LabelSlug is the random slug compose gives each one-off container.
const labelSlug = "com.docker.compose.slug"

type runFlags struct {
	rm           bool
	detach       bool
	name         string
	env          []string
	volumes      []string
	publish      []string
	servicePorts bool
	useAliases   bool
	noDeps       bool
	entrypoint   string
	user         string
	workdir      string
	noTTY        bool
}

func newRunCommand(a *app) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] SERVICE [COMMAND] [ARGS...]",
		Short: "Run a one-off command in a new container of a service",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runRun(cmd.Context(), f, args[0], args[1:])
		},
	}
	cmd.Flags().SetInterspersed(false)
	fs := cmd.Flags()
	fs.BoolVar(&f.rm, "rm", false, "Automatically remove the container when it exits")
	fs.BoolVarP(&f.detach, "detach", "d", false, "Run the container in the background and print its name")
	fs.StringVar(&f.name, "name", "", "Assign a name to the container")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "Set environment variables (KEY=VALUE, or KEY to pass it from here)")
	fs.StringArrayVarP(&f.volumes, "volume", "v", nil, "Bind mount a path or mount a volume (SRC:DST[:ro])")
	fs.StringArrayVarP(&f.publish, "publish", "p", nil, "Publish a container's port to the host ([IP:]HOST:CONTAINER[/PROTO])")
	fs.BoolVarP(&f.servicePorts, "service-ports", "P", false, "Run with the service's ports published")
	fs.BoolVar(&f.useAliases, "use-aliases", false, "Use the service's network aliases for the container")
	fs.BoolVar(&f.noDeps, "no-deps", false, "Don't start the services it depends on")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "Override the image's entrypoint")
	fs.StringVarP(&f.user, "user", "u", "", "Run as this user (name or uid[:gid])")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.BoolVarP(&f.noTTY, "no-TTY", "T", false, "Disable pseudo-TTY allocation")
	// -p is --publish here, as in compose; --project-name stays available
	// by name (and as -p before the command).
	fs.StringVar(&a.opts.projectName, "project-name", a.opts.projectName, "Project name")
	return cmd
}

func (a *app) runRun(ctx context.Context, f runFlags, service string, args []string) error {
	if f.rm && f.detach {
		return errors.New("--rm and -d cannot be combined: a detached one-off container is removed by `stack down`")
	}
	desired, err := a.loadProject(ctx, []string{service}, nil, f.noDeps)
	if err != nil {
		return err
	}
	// On a terminal (and without -T or -d) the container gets a TTY and
	// the terminal's input, as `docker compose run` gives it.
	interactive := !f.noTTY && !f.detach && stdinIsTerminal(a) && isTTY(a.stdout)
	spec, err := oneOffSpec(desired, service, f, args)
	if err != nil {
		return err
	}
	if interactive {
		spec.Process.TTY, spec.Process.StdinOpen = true, true
	}
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	id, err := a.createOneOff(ctx, c, desired, spec, f.noDeps)
	if err != nil {
		return err
	}
	if f.detach {
		if err := c.StartContainer(ctx, id); err != nil {
			return fmt.Errorf("run %s: %w", spec.Name, err)
		}
		fmt.Fprintln(a.stdout, spec.Name)
		return nil
	}
	code, err := a.runAttached(ctx, c, id, interactive)
	if f.rm {
		if rmErr := c.RemoveContainer(context.WithoutCancel(ctx), id); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
	}
	if err != nil {
		return fmt.Errorf("run %s: %w", spec.Name, err)
	}
	if code != 0 {
		return exitError{code: code}
	}
	return nil
}

// runAttached starts the container with its stdio connected to this
// process and waits for it to exit. With tty the terminal is its TTY (raw
// mode, resized on SIGWINCH); without, piped stdin is forwarded and its end
// closes the container's stdin. Ctrl-C stops the container.
func (a *app) runAttached(ctx context.Context, c *ctrd.Client, id string, tty bool) (int, error) {
	opts := ctrd.AttachOptions{Stdin: a.nonTerminalStdin(), Stdout: a.stdout, Stderr: a.stderr}
	if tty {
		in, sizes, restore, err := a.rawTerminal()
		if err != nil {
			return 0, err
		}
		defer restore()
		opts.Stdin, opts.Resize = in, sizes
	}
	wait, err := c.StartAttached(ctx, id, opts)
	if err != nil {
		return 0, err
	}
	code, err := wait()
	if ctx.Err() != nil {
		_ = c.StopContainer(context.WithoutCancel(ctx), id, 0)
		return 130, nil
	}
	return code, err
}

// createOneOff starts the service's dependencies (unless noDeps), makes
// sure its networks and volumes exist, and creates the container, all under
// the project lock.
func (a *app) createOneOff(ctx context.Context, c *ctrd.Client, desired compose.Desired, spec engine.ContainerSpec, noDeps bool) (string, error) {
	unlock, err := a.lockProject(ctx, c, desired.Project)
	if err != nil {
		return "", err
	}
	defer unlock()
	if !noDeps {
		if err := a.startDependencies(ctx, c, desired, spec.Service); err != nil {
			return "", err
		}
	}
	if err := ensureResources(ctx, c, desired, spec); err != nil {
		return "", err
	}
	if len(spec.Network.Ports) > 0 {
		all, err := c.Observe(ctx, "")
		if err != nil {
			return "", err
		}
		if err := ctrd.CheckHostPorts([]engine.ContainerSpec{spec}, all); err != nil {
			return "", err
		}
	}
	return c.CreateContainer(ctx, spec)
}

// startDependencies converges the services service depends on, as
// `stack up -d` of them would, and leaves the others alone.
func (a *app) startDependencies(ctx context.Context, c *ctrd.Client, desired compose.Desired, service string) error {
	var deps []string
	for _, s := range desired.Services {
		if s.Name != service {
			deps = append(deps, s.Name)
		}
	}
	if len(deps) == 0 {
		return nil
	}
	depDesired, err := a.loadProject(ctx, deps, nil, false)
	if err != nil {
		return err
	}
	state, err := c.Observe(ctx, desired.Project)
	if err != nil {
		return err
	}
	cv, err := computeFrom(depDesired, state, &convergeFlags{noRecreate: true}, deps)
	if err != nil {
		return err
	}
	printWarnings(a, cv.plan.Warnings)
	if cv.plan.Empty() {
		return nil
	}
	if err := preflight(ctx, c, cv.plan); err != nil {
		return err
	}
	err = a.apply(ctx, c, cv.plan, "Running", true)
	a.serveNames(ctx, depDesired)
	return err
}

// ensureResources creates the project networks and volumes the one-off
// container uses that do not exist yet.
func ensureResources(ctx context.Context, c *ctrd.Client, desired compose.Desired, spec engine.ContainerSpec) error {
	for _, att := range spec.Network.Networks {
		for _, n := range desired.Networks {
			if n.Name == att.Network && !n.External {
				if err := c.CreateNetwork(ctx, n); err != nil && !errdefs.IsAlreadyExists(err) {
					return err
				}
			}
		}
	}
	for _, m := range spec.Mounts {
		if m.Type != engine.MountVolume {
			continue
		}
		for _, v := range desired.Volumes {
			if v.Name == m.Source && !v.External {
				if err := c.CreateVolume(ctx, v); err != nil && !errdefs.IsAlreadyExists(err) {
					return err
				}
			}
		}
	}
	return nil
}

// oneOffSpec turns the service's first replica spec into a one-off
// container as compose makes it: its own name and slug, no ports unless
// asked, no service alias unless asked, no restart policy.
func oneOffSpec(desired compose.Desired, service string, f runFlags, args []string) (engine.ContainerSpec, error) {
	var base *engine.ContainerSpec
	for i := range desired.Containers {
		if desired.Containers[i].Service == service {
			base = &desired.Containers[i]
			break
		}
	}
	if base == nil {
		return engine.ContainerSpec{}, fmt.Errorf("no such service: %s (or it has no replicas)", service)
	}
	spec := cloneSpec(*base)
	slug := newSlug()
	spec.Name = f.name
	if spec.Name == "" {
		spec.Name = fmt.Sprintf("%s-%s-run-%s", desired.Project, service, slug[:12])
	}
	spec.OneOff, spec.Number = true, 0
	delete(spec.Labels, engine.LabelNumber)
	delete(spec.Labels, engine.LabelName)
	spec.Labels[engine.LabelOneOff] = "True"
	spec.Labels[labelSlug] = slug
	spec.Restart = engine.RestartPolicy{Name: "no"}
	if err := applyRunProcess(&spec.Process, f, args); err != nil {
		return spec, err
	}
	if err := applyRunNetwork(&spec, base.Name, f); err != nil {
		return spec, err
	}
	mounts, err := runMounts(f.volumes, desired)
	if err != nil {
		return spec, err
	}
	spec.Mounts = append(spec.Mounts, mounts...)
	return spec, nil
}

func cloneSpec(s engine.ContainerSpec) engine.ContainerSpec {
	out := s
	out.Labels = make(map[string]string, len(s.Labels)+2)
	for k, v := range s.Labels {
		out.Labels[k] = v
	}
	out.Process.Env = slices.Clone(s.Process.Env)
	out.Mounts = slices.Clone(s.Mounts)
	out.Network.Networks = slices.Clone(s.Network.Networks)
	out.Network.Ports = slices.Clone(s.Network.Ports)
	return out
}

func applyRunProcess(p *engine.Process, f runFlags, args []string) error {
	if f.entrypoint != "" {
		ep, err := shellwords.Parse(f.entrypoint)
		if err != nil {
			return fmt.Errorf("--entrypoint %q: %w", f.entrypoint, err)
		}
		p.Entrypoint, p.Command = ep, nil
	}
	if len(args) > 0 {
		p.Command = args
	}
	p.Env = mergeRunEnv(p.Env, envFlags(f.env))
	if f.user != "" {
		p.User = f.user
	}
	if f.workdir != "" {
		p.WorkingDir = f.workdir
	}
	if f.noTTY {
		p.TTY = false
	}
	// Unless on a terminal, output is followed from the log and stdin is
	// not attached.
	p.StdinOpen = false
	return nil
}

// mergeRunEnv sets extra's variables over base, keeping the list sorted.
func mergeRunEnv(base, extra []string) []string {
	vars := map[string]string{}
	for _, kv := range append(slices.Clone(base), extra...) {
		k, _, _ := strings.Cut(kv, "=")
		vars[k] = kv
	}
	out := make([]string, 0, len(vars))
	for _, kv := range vars {
		out = append(out, kv)
	}
	slices.Sort(out)
	return out
}

// applyRunNetwork drops the service's ports (unless --service-ports), adds
// -p ones, and keeps the service's aliases only with --use-aliases: the
// container always answers to its own name.
func applyRunNetwork(spec *engine.ContainerSpec, replicaName string, f runFlags) error {
	if !f.servicePorts {
		spec.Network.Ports = nil
	}
	for _, p := range f.publish {
		b, err := parsePublish(p)
		if err != nil {
			return err
		}
		spec.Network.Ports = append(spec.Network.Ports, b)
	}
	for i := range spec.Network.Networks {
		att := &spec.Network.Networks[i]
		var aliases []string
		if f.useAliases {
			for _, al := range att.Aliases {
				if al != replicaName {
					aliases = append(aliases, al)
				}
			}
		}
		att.Aliases = append(aliases, spec.Name)
		att.IPv4Address = "" // a fixed address belongs to the service's container
	}
	return nil
}

// parsePublish reads [IP:]HOST:CONTAINER[/PROTO] (HOST may be empty).
func parsePublish(s string) (engine.PortBinding, error) {
	bad := fmt.Errorf("invalid -p %q: use [IP:]HOST:CONTAINER[/tcp|udp]", s)
	b := engine.PortBinding{Protocol: "tcp"}
	spec, proto, ok := strings.Cut(s, "/")
	if ok {
		if proto != "tcp" && proto != "udp" {
			return b, bad
		}
		b.Protocol = proto
	}
	parts := strings.Split(spec, ":")
	var host, ctr string
	switch len(parts) {
	case 2:
		host, ctr = parts[0], parts[1]
	case 3:
		b.HostIP, host, ctr = parts[0], parts[1], parts[2]
	default:
		return b, bad
	}
	cp, err := strconv.ParseUint(ctr, 10, 16)
	if err != nil || cp == 0 {
		return b, bad
	}
	b.ContainerPort = uint16(cp)
	if host != "" {
		hp, err := strconv.ParseUint(host, 10, 16)
		if err != nil {
			return b, bad
		}
		b.HostPort = uint16(hp)
	}
	return b, nil
}

// runMounts reads -v SRC:DST[:ro]: a path (absolute or ./relative) is a
// bind mount, a name is a volume (the project's, when it declares it).
func runMounts(values []string, desired compose.Desired) ([]engine.Mount, error) {
	var out []engine.Mount
	for _, v := range values {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
			return nil, fmt.Errorf("invalid -v %q: use SRC:DST[:ro] with an absolute DST", v)
		}
		m := engine.Mount{Source: parts[0], Target: parts[1], Type: engine.MountVolume}
		if len(parts) == 3 {
			switch parts[2] {
			case "ro":
				m.ReadOnly = true
			case "rw":
			default:
				return nil, fmt.Errorf("invalid -v %q: the mode is ro or rw", v)
			}
		}
		if strings.HasPrefix(m.Source, "/") || strings.HasPrefix(m.Source, ".") {
			abs, err := filepath.Abs(m.Source)
			if err != nil {
				return nil, err
			}
			m.Type, m.Source, m.CreateHostPath = engine.MountBind, abs, true
		} else {
			for _, vol := range desired.Volumes {
				if vol.Key == m.Source {
					m.Source = vol.Name
				}
			}
		}
		out = append(out, m)
	}
	return out, nil
}

func newSlug() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
