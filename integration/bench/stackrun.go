package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// stackRunner drives the stack binary in its own namespace and state
// directory, the way a user would.
type stackRunner struct {
	cfg       config
	dir       string
	namespace string
}

func newStackRunner(cfg config) (*stackRunner, error) {
	dir, err := os.MkdirTemp("", "stack-bench-")
	if err != nil {
		return nil, err
	}
	r := &stackRunner{cfg: cfg, dir: dir, namespace: "bench-stack"}
	if _, err := r.stack(context.Background(), "image", "load", "-i", filepath.Join(cfg.images, "busybox.oci.tar")); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *stackRunner) close() {
	_, _ = r.stack(context.Background(), "-p", "bench", "down", "-v", "-t", "0")
	os.RemoveAll(r.dir)
}

func (r *stackRunner) stack(ctx context.Context, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, r.cfg.stack, args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "STACK_CONTAINERD_ADDRESS="+r.cfg.address, "STACK_NAMESPACE="+r.namespace,
		"STACK_STATE_DIR="+filepath.Join(r.dir, "state"), "COMPOSE_PROGRESS=quiet")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("stack %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return took, nil
}

// writeProject writes N busybox sleep services on one network; changed
// gives the first service a different environment.
func (r *stackRunner) writeProject(n int, changed bool) error {
	var b strings.Builder
	b.WriteString("name: bench\nservices:\n")
	for i := range n {
		fmt.Fprintf(&b, "  s%d:\n    image: busybox\n    command: [sleep, \"3600\"]\n    stop_signal: SIGKILL\n", i)
		if i == 0 && changed {
			b.WriteString("    environment:\n      CHANGED: \"1\"\n")
		}
	}
	return os.WriteFile(filepath.Join(r.dir, "compose.yaml"), []byte(b.String()), 0o644)
}

// measureOnce adds one run of each stack figure to s: cold up, no-op up,
// ps, up after changing one service, down.
func (r *stackRunner) measureOnce(ctx context.Context, n int, s *stackSamples) error {
	steps := []struct {
		changed bool
		args    []string
		into    *sample
	}{
		{false, []string{"up", "-d"}, &s.coldUp},
		{false, []string{"up", "-d"}, &s.noopUp},
		{false, []string{"ps"}, &s.ps},
		{true, []string{"up", "-d"}, &s.changeOne},
		{true, []string{"down", "-t", "0"}, &s.down},
	}
	for _, st := range steps {
		if err := r.writeProject(n, st.changed); err != nil {
			return err
		}
		took, err := r.stack(ctx, st.args...)
		if err != nil {
			return err
		}
		*st.into = append(*st.into, took)
	}
	return nil
}
