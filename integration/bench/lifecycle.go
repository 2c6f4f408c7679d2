package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// The lifecycle figures of issue 5, measured through the stack binary on
// the real containerd: `logs --tail` on a 1 GiB log, the logging binary's
// throughput behind the real shim (and alone), and the CPU the healthchecks
// of 30 services cost. Everything runs in a namespace and state directory
// of its own and is removed afterwards.
const (
	lifeNamespace = "bench-life"
	lifeProject   = "benchlife"
)

// lifeRow is one figure: what was measured, the value, and the target.
type lifeRow struct {
	figure, value, detail, target string
	met                           bool
	noTarget                      bool // a figure shown for context
}

func runLifecycle(ctx context.Context, cfg config) error {
	dir, err := os.MkdirTemp("", "stack-bench-life-")
	if err != nil {
		return err
	}
	r := &stackRunner{cfg: cfg, dir: dir, namespace: lifeNamespace}
	defer func() {
		_, _, _ = r.output(context.WithoutCancel(ctx), "-p", lifeProject, "down", "-v", "-t", "0", "--remove-orphans")
		os.RemoveAll(dir)
	}()
	if _, err := r.stack(ctx, "image", "load", "-i", filepath.Join(cfg.images, "busybox.oci.tar")); err != nil {
		return err
	}
	var rows []lifeRow
	for _, m := range []struct {
		name, section string
		run           func(context.Context, *stackRunner) ([]lifeRow, error)
	}{
		{"logs --tail on a 1 GiB log", "logs", benchTail},
		{"logging throughput", "logs", benchLogThroughput},
		{"healthcheck CPU", "health", benchHealthCPU},
	} {
		if cfg.section != "all" && cfg.section != "lifecycle" && cfg.section != m.section {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s\n", m.name)
		got, err := m.run(ctx, r)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		rows = append(rows, got...)
	}
	printLifeTable(os.Stdout, rows, cfg)
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average at the end (1, 5, 15 min; %d CPUs): %s", runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " ")+"\n")
	}
	return nil
}

func printLifeTable(w io.Writer, rows []lifeRow, cfg config) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "lifecycle figure\tmeasured\tdetail\ttarget\t")
	for _, r := range rows {
		verdict := "–"
		switch {
		case r.noTarget:
		case r.met:
			verdict = r.target + " ✓"
		default:
			verdict = r.target + " ✗ MISSED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", r.figure, r.value, r.detail, verdict)
	}
	tw.Flush()
	fmt.Fprintf(w, "re-measure: go run ./integration/bench -section lifecycle -address %s -stack %s -images %s\n"+
		"            (-section logs or -section health for a part)\n", cfg.address, cfg.stack, cfg.images)
}

// output runs stack like stack() does and returns its stdout.
func (r *stackRunner) output(ctx context.Context, args ...string) (string, time.Duration, error) {
	cmd := exec.CommandContext(ctx, r.cfg.stack, args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "STACK_CONTAINERD_ADDRESS="+r.cfg.address, "STACK_NAMESPACE="+r.namespace,
		"STACK_STATE_DIR="+r.stateDir(), "COMPOSE_PROGRESS=quiet")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return stdout.String(), took, fmt.Errorf("stack %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), took, nil
}

func (r *stackRunner) stateDir() string { return filepath.Join(r.dir, "state") }

// writeLifeProject writes the compose file of the lifecycle project.
func (r *stackRunner) writeLifeProject(services string) error {
	return os.WriteFile(filepath.Join(r.dir, "compose.yaml"), []byte("name: "+lifeProject+"\nservices:\n"+services), 0o644)
}

// down removes the lifecycle project's containers.
func (r *stackRunner) down(ctx context.Context) {
	if _, _, err := r.output(context.WithoutCancel(ctx), "down", "-v", "-t", "0", "--remove-orphans"); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
}

// logFiles are the current json logs of the project's containers, by
// container ID.
func (r *stackRunner) logFiles() (map[string]string, error) {
	paths, err := filepath.Glob(filepath.Join(r.stateDir(), "containers", "*", "*-json.log"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range paths {
		out[filepath.Base(filepath.Dir(p))] = p
	}
	return out, nil
}

func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / (1 << 20) / d.Seconds() }
