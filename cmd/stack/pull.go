package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/containerd/log"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func init() { registerCommand(newPullCommand) }

// registryFlags are the flags pull and push share.
type registryFlags struct {
	insecure []string
	timeout  time.Duration
	quiet    bool
}

func (f *registryFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.insecure, "insecure-registry", nil, "Speak plain HTTP to this registry host[:port] (repeatable; also "+ctrd.EnvInsecureRegistries+")")
	cmd.Flags().DurationVar(&f.timeout, "registry-timeout", 0, "Give up when the registry does not answer within this time (default 30s, or "+ctrd.EnvRegistryTimeout+")")
	cmd.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "Print no progress")
}

// config merges the environment with the flags (flags add to the insecure
// list and override the timeout).
func (f *registryFlags) config(a *app) (ctrd.RegistryConfig, error) {
	quietContainerdLog(a)
	cfg, err := ctrd.RegistryConfigFromEnv()
	if err != nil {
		return cfg, err
	}
	cfg.Insecure = append(cfg.Insecure, f.insecure...)
	if f.timeout > 0 {
		cfg.Timeout = f.timeout
	}
	return cfg, nil
}

// quietContainerdLog keeps the containerd client's own log lines (it logs
// every failed registry request at info level) off stderr unless --debug:
// the error stack returns already says what failed.
func quietContainerdLog(a *app) {
	if !a.opts.debug {
		_ = log.SetLevel("error")
	}
}

// progress returns the callback that renders transfer progress on stderr,
// or nil when quiet.
func (f *registryFlags) progress(a *app) (func(engine.PullProgress), func()) {
	mode := a.opts.progress
	if f.quiet || mode == "quiet" {
		return nil, func() {}
	}
	tty := mode == "tty" || (mode != "plain" && mode != "json" && isTerminal(a.stderr))
	v := &progressView{w: a.stderr, tty: tty, lines: map[string]engine.PullProgress{}}
	return v.update, v.finish
}

func newPullCommand(a *app) *cobra.Command {
	var f registryFlags
	cmd := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image from a registry and unpack it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.config(a)
			if err != nil {
				return err
			}
			c, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			report, finish := f.progress(a)
			name, dgst, err := c.Pull(cmd.Context(), args[0], ctrd.PullConfig{Registry: cfg, Progress: report})
			finish()
			if err != nil {
				return err
			}
			if !f.quiet {
				fmt.Fprintf(a.stdout, "Digest: %s\n", dgst)
			}
			fmt.Fprintln(a.stdout, name)
			return nil
		},
	}
	f.bind(cmd)
	return cmd
}

// progressView draws one line per layer. On a terminal it redraws the
// lines in place; otherwise it prints a line when a layer's status changes.
type progressView struct {
	w   io.Writer
	tty bool

	mu    sync.Mutex
	order []string
	lines map[string]engine.PullProgress
	drawn int
}

func (v *progressView) update(p engine.PullProgress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	prev, seen := v.lines[p.Digest]
	if !seen {
		v.order = append(v.order, p.Digest)
	}
	v.lines[p.Digest] = p
	if v.tty {
		v.redraw()
		return
	}
	if !seen || prev.Status != p.Status {
		fmt.Fprintln(v.w, progressLine(p))
	}
}

func (v *progressView) redraw() {
	if v.drawn > 0 {
		fmt.Fprintf(v.w, "\x1b[%dA", v.drawn)
	}
	for _, d := range v.order {
		fmt.Fprintf(v.w, "\x1b[2K%s\n", progressLine(v.lines[d]))
	}
	v.drawn = len(v.order)
}

func (v *progressView) finish() {}

func progressLine(p engine.PullProgress) string {
	id := strings.TrimPrefix(p.Digest, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	switch p.Status {
	case "downloading", "uploading":
		return fmt.Sprintf("%s: %s %s / %s", id, p.Status, humanBytes(p.Done), humanBytes(p.Total))
	case "done", "exists":
		return fmt.Sprintf("%s: %s (%s)", id, p.Status, humanBytes(p.Total))
	}
	return fmt.Sprintf("%s: %s", id, p.Status)
}

func humanBytes(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }
