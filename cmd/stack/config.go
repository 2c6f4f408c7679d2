package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/compose"
)

func init() { registerCommand(newConfigCommand) }

// loadOptions turns the global flags into compose.LoadOptions, injecting
// the process environment and the current directory.
func (a *app) loadOptions(services []string, scale map[string]int, noDeps bool) (compose.LoadOptions, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return compose.LoadOptions{}, fmt.Errorf("current directory: %w", err)
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return compose.LoadOptions{
		Files:            a.opts.files,
		ProjectName:      a.opts.projectName,
		ProjectDirectory: a.opts.projectDirectory,
		EnvFiles:         a.opts.envFiles,
		Profiles:         a.opts.profiles,
		Environment:      env,
		WorkingDir:       cwd,
		Services:         services,
		NoDeps:           noDeps,
		Scale:            scale,
		Version:          clientVersion(),
	}, nil
}

// loadProject loads the compose files named by the global flags into the
// desired state; up, plan and down call it.
func (a *app) loadProject(ctx context.Context, services []string, scale map[string]int, noDeps bool) (compose.Desired, error) {
	opts, err := a.loadOptions(services, scale, noDeps)
	if err != nil {
		return compose.Desired{}, err
	}
	return compose.LoadCached(ctx, opts, a.loadCache())
}

// loadCache is where loaded projects are cached, keyed also by this very
// binary (a rebuilt or upgraded stack never reuses an entry).
// STACK_LOAD_CACHE=off turns it off.
func (a *app) loadCache() compose.Cache {
	if os.Getenv("STACK_LOAD_CACHE") == "off" {
		return compose.Cache{}
	}
	exe, err := os.Executable()
	if err != nil {
		return compose.Cache{}
	}
	info, err := os.Stat(exe)
	if err != nil {
		return compose.Cache{}
	}
	salt := fmt.Sprintf("%s %s %d %d", clientVersion(), exe, info.Size(), info.ModTime().UnixNano())
	return compose.Cache{Dir: filepath.Join(a.opts.stateDir, "cache", "load"), Salt: salt}
}

// projectName resolves the project name for commands that work from
// labels (ps, down, logs): -p, COMPOSE_PROJECT_NAME, the compose files, or
// the directory when there is no compose file.
func (a *app) projectName(ctx context.Context) (string, error) {
	opts, err := a.loadOptions(nil, nil, false)
	if err != nil {
		return "", err
	}
	return compose.ProjectName(ctx, opts)
}

type configOptions struct {
	format   string
	services bool
	volumes  bool
	networks bool
	images   bool
	profiles bool
	hash     string
	quiet    bool
	output   string
}

func newConfigCommand(a *app) *cobra.Command {
	var o configOptions
	cmd := &cobra.Command{
		Use:   "config [OPTIONS] [SERVICE...]",
		Short: "Validate the compose files and print the normalised model",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runConfig(cmd.Context(), o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "yaml", "Output format: yaml or json")
	f.BoolVar(&o.services, "services", false, "Print the service names, one per line")
	f.BoolVar(&o.volumes, "volumes", false, "Print the volume names, one per line")
	f.BoolVar(&o.networks, "networks", false, "Print the network names, one per line")
	f.BoolVar(&o.images, "images", false, "Print the image names, one per line")
	f.BoolVar(&o.profiles, "profiles", false, "Print the profile names, one per line")
	f.StringVar(&o.hash, "hash", "", `Print the config hash of services ("svc1,svc2" or "*")`)
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only validate the configuration, print nothing")
	f.StringVarP(&o.output, "output", "o", "", "Write to this file instead of stdout")
	return cmd
}

func (a *app) runConfig(ctx context.Context, o configOptions, services []string) error {
	if o.format != "yaml" && o.format != "json" {
		return fmt.Errorf("--format %q: use yaml or json", o.format)
	}
	opts, err := a.loadOptions(services, nil, false)
	if err != nil {
		return err
	}
	m, err := compose.LoadModel(ctx, opts)
	if err != nil {
		return err
	}
	if o.quiet {
		return nil
	}
	var buf bytes.Buffer
	if err := writeConfig(&buf, m, o); err != nil {
		return err
	}
	if o.output != "" {
		return os.WriteFile(o.output, buf.Bytes(), 0o644)
	}
	_, err = a.stdout.Write(buf.Bytes())
	return err
}

// writeConfig renders what the flags ask for: one list, the hashes, or the
// whole model.
func writeConfig(w io.Writer, m *compose.Model, o configOptions) error {
	lists := []struct {
		on    bool
		names func() []string
	}{
		{o.services, m.ServiceNames}, {o.volumes, m.VolumeNames}, {o.networks, m.NetworkNames},
		{o.images, m.Images}, {o.profiles, m.Profiles},
	}
	for _, l := range lists {
		if l.on {
			return writeLines(w, l.names())
		}
	}
	if o.hash != "" {
		return writeHashes(w, m, o.hash)
	}
	render := m.YAML
	if o.format == "json" {
		render = m.JSON
	}
	b, err := render()
	if err != nil {
		return fmt.Errorf("render the model: %w", err)
	}
	_, err = w.Write(b)
	return err
}

func writeLines(w io.Writer, lines []string) error {
	for _, l := range lines {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return err
		}
	}
	return nil
}

// writeHashes prints "svc hash" for each service in spec ("*" for all).
func writeHashes(w io.Writer, m *compose.Model, spec string) error {
	names := m.ServiceNames()
	if spec != "*" {
		names = strings.Split(spec, ",")
	}
	for _, n := range names {
		h, err := m.ServiceHash(strings.TrimSpace(n))
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s %s\n", strings.TrimSpace(n), h); err != nil {
			return err
		}
	}
	return nil
}
