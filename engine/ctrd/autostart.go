package ctrd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
)

// Probe reports whether a containerd answers on address within timeout.
func Probe(ctx context.Context, address string, timeout time.Duration) error {
	if _, err := os.Stat(address); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, address, err)
	}
	ctr, err := containerd.New(address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer ctr.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := ctr.Version(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	return nil
}

// ErrNoContainerd means the containerd binary is not installed.
var ErrNoContainerd = errors.New("containerd is not installed (apt-get install containerd runc containernetworking-plugins)")

// StartDaemon starts a containerd listening on address, with its root and
// state under stateDir/containerd, detached in its own session so that it
// outlives the CLI. It returns once the daemon answers.
func StartDaemon(ctx context.Context, address, stateDir string) error {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return ErrNoContainerd
	}
	dir := filepath.Join(stateDir, "containerd")
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(address), 0o711); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(daemonConfig(dir, address)), 0o644); err != nil {
		return fmt.Errorf("write containerd config: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open containerd log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Env = withoutGoRuntimeSettings(os.Environ())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	pid := cmd.Process.Pid
	_ = os.WriteFile(filepath.Join(dir, "containerd.pid"), []byte(fmt.Sprint(pid)), 0o644)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("containerd exited at start (%v); see %s", err, logf.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if Probe(ctx, address, time.Second) == nil {
			_ = cmd.Process.Release()
			return nil
		}
	}
	return fmt.Errorf("containerd did not answer on %s within 15s; see %s", address, logf.Name())
}

func daemonConfig(dir, address string) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %q

[ttrpc]
  address = "%s.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), address, address, filepath.Join(dir, "opt"))
}

// goRuntimeSettings are the environment variables every Go program reads
// at start.
var goRuntimeSettings = []string{"GODEBUG", "GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GOTRACEBACK"}

// withoutGoRuntimeSettings is env less the Go runtime's settings: the
// containerd started here outlives the command that started it and passes
// its environment to every shim, and a `GODEBUG=inittrace=1 stack ps` once
// would leave every later shim printing its trace into the handshake with
// containerd, which then fails to start any task.
func withoutGoRuntimeSettings(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(goRuntimeSettings, name) {
			out = append(out, kv)
		}
	}
	return out
}
