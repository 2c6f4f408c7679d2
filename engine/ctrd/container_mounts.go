package ctrd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stackdev/stack/engine"
)

// buildMounts turns the spec's mounts, files and the container's
// resolv.conf and hosts into OCI mounts, parents before children.
func (c *Client) buildMounts(ctx context.Context, id string, spec engine.ContainerSpec, hostNS []specs.LinuxNamespaceType) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range spec.Mounts {
		om, err := c.ociMount(ctx, spec.Project, m)
		if err != nil {
			return nil, err
		}
		out = append(out, om)
	}
	files, err := c.writeFiles(id, spec.Files)
	if err != nil {
		return nil, err
	}
	out = append(out, files...)
	etc, err := c.etcMounts(ctx, id, spec, hostNS)
	if err != nil {
		return nil, err
	}
	out = append(out, etc...)
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(filepath.Clean(out[i].Destination), "/") < strings.Count(filepath.Clean(out[j].Destination), "/")
	})
	return out, nil
}

func (c *Client) ociMount(ctx context.Context, project string, m engine.Mount) (specs.Mount, error) {
	switch m.Type {
	case engine.MountBind:
		return bindMount(m)
	case engine.MountVolume:
		return c.volumeMount(ctx, project, m)
	case engine.MountTmpfs:
		return tmpfsMount(m), nil
	}
	return specs.Mount{}, fmt.Errorf("mount %s: unknown type %q", m.Target, m.Type)
}

func bindOptions(readOnly bool, propagation string) []string {
	opts := []string{"rbind", "rw"}
	if readOnly {
		opts[1] = "ro"
	}
	if propagation == "" {
		propagation = "rprivate"
	}
	return append(opts, propagation)
}

func bindMount(m engine.Mount) (specs.Mount, error) {
	if !filepath.IsAbs(m.Source) {
		return specs.Mount{}, fmt.Errorf("bind mount %s: source %q is not an absolute path", m.Target, m.Source)
	}
	if _, err := os.Stat(m.Source); err != nil {
		if !isNotExist(err) || !m.CreateHostPath {
			return specs.Mount{}, fmt.Errorf("bind mount %s: source %s does not exist (create it, or set bind.create_host_path): %w", m.Target, m.Source, err)
		}
		if err := os.MkdirAll(m.Source, 0o755); err != nil {
			return specs.Mount{}, fmt.Errorf("bind mount %s: create %s: %w", m.Target, m.Source, err)
		}
	}
	return specs.Mount{Type: "bind", Source: m.Source, Destination: m.Target, Options: bindOptions(m.ReadOnly, m.Propagation)}, nil
}

func (c *Client) volumeMount(ctx context.Context, project string, m engine.Mount) (specs.Mount, error) {
	rec, err := c.ensureVolume(ctx, m.Source, project)
	if err != nil {
		return specs.Mount{}, fmt.Errorf("volume mount %s: %w", m.Target, err)
	}
	return specs.Mount{Type: "bind", Source: c.volumeData(rec.Name), Destination: m.Target, Options: bindOptions(m.ReadOnly, m.Propagation)}, nil
}

func tmpfsMount(m engine.Mount) specs.Mount {
	opts := []string{"nosuid", "nodev", "noexec"}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	if m.TmpfsSize > 0 {
		opts = append(opts, fmt.Sprintf("size=%d", m.TmpfsSize))
	}
	if m.TmpfsMode != 0 {
		opts = append(opts, fmt.Sprintf("mode=%o", m.TmpfsMode))
	}
	return specs.Mount{Type: "tmpfs", Source: "tmpfs", Destination: m.Target, Options: opts}
}

// resolveNamespaces decides which namespaces are the host's and which are
// joined from another container (network_mode, ipc and pid).
func (c *Client) resolveNamespaces(ctx context.Context, in *specInput) error {
	n := in.spec.Network
	switch {
	case n.Mode == "host":
		in.hostNS = append(in.hostNS, specs.NetworkNamespace, specs.UTSNamespace)
	case n.Mode == "none":
		// runc creates a namespace with loopback only.
	case strings.HasPrefix(n.Mode, "container:"):
		target, err := c.containerByName(ctx, strings.TrimPrefix(n.Mode, "container:"))
		if err != nil {
			return fmt.Errorf("network_mode %s: %w", n.Mode, err)
		}
		in.namespaces = append(in.namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netnsPath(target)})
	case n.Mode == "" || n.Mode == "bridge" || n.Mode == "default":
		if len(n.Networks) > 0 {
			in.namespaces = append(in.namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netnsPath(in.id)})
		}
	default:
		return fmt.Errorf("network_mode %q is not supported (use none, host or container:NAME)", n.Mode)
	}
	if err := c.shareNamespace(ctx, in, in.spec.Security.IPC, specs.IPCNamespace, "ipc"); err != nil {
		return err
	}
	return c.shareNamespace(ctx, in, in.spec.Security.PID, specs.PIDNamespace, "pid")
}

func (c *Client) shareNamespace(ctx context.Context, in *specInput, mode string, t specs.LinuxNamespaceType, kind string) error {
	switch {
	case mode == "" || mode == "private" || mode == "shareable":
		return nil
	case mode == "host":
		in.hostNS = append(in.hostNS, t)
		return nil
	case strings.HasPrefix(mode, "container:"):
		target, err := c.containerByName(ctx, strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return fmt.Errorf("%s %s: %w", kind, mode, err)
		}
		pid, err := c.taskPid(ctx, target)
		if err != nil {
			return fmt.Errorf("%s %s: the container must be running: %w", kind, mode, err)
		}
		in.namespaces = append(in.namespaces, specs.LinuxNamespace{Type: t, Path: fmt.Sprintf("/proc/%d/ns/%s", pid, kind)})
		return nil
	}
	return fmt.Errorf("%s mode %q is not supported (use host, private, shareable or container:NAME)", kind, mode)
}
