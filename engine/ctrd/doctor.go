package ctrd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"golang.org/x/sys/unix"
)

// Check is one prerequisite of the host, as `stack doctor` reports it.
type Check struct {
	Name   string
	OK     bool
	Detail string
	// Fix is the command that repairs a failed check.
	Fix string
	// Blocking checks make stack unusable when they fail.
	Blocking bool
}

// RequiredCNIPlugins are the plugins every stack network uses.
var RequiredCNIPlugins = []string{"bridge", "host-local", "portmap", "loopback", "firewall"}

// DoctorOptions say where to look.
type DoctorOptions struct {
	Address       string
	StateDir      string
	CNIPluginDirs []string
}

const aptFix = "apt-get install -y containerd runc containernetworking-plugins iptables"

// Diagnose runs every check. It changes nothing on the host except creating
// and removing a probe file in the state directory.
func Diagnose(ctx context.Context, opts DoctorOptions) []Check {
	return []Check{
		checkContainerd(ctx, opts.Address),
		checkBinary("runc", "runc", "apt-get install -y runc", true),
		checkCNIPlugins(opts.CNIPluginDirs),
		checkCgroups(),
		checkBinary("iptables", "iptables", "apt-get install -y iptables", true),
		checkIPForward(),
		checkSnapshotter(ctx, opts.Address),
		checkStateDir(opts.StateDir),
	}
}

func checkContainerd(ctx context.Context, address string) Check {
	c := Check{Name: "containerd", Blocking: true}
	ctr, err := connectProbe(ctx, address)
	if err != nil {
		c.Detail = fmt.Sprintf("not reachable at %s", address)
		if _, lookErr := exec.LookPath("containerd"); lookErr != nil {
			c.Fix = aptFix
		} else {
			c.Fix = "stack version  # starts containerd when it is installed but not running"
		}
		return c
	}
	defer ctr.Close()
	v, err := ctr.Version(ctx)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	c.OK, c.Detail = true, fmt.Sprintf("%s at %s", v.Version, address)
	return c
}

func connectProbe(ctx context.Context, address string) (*containerd.Client, error) {
	if err := Probe(ctx, address, 2*time.Second); err != nil {
		return nil, err
	}
	return containerd.New(address)
}

func checkBinary(name, bin, fix string, blocking bool) Check {
	c := Check{Name: name, Blocking: blocking, Fix: fix}
	path, err := exec.LookPath(bin)
	if err != nil {
		c.Detail = "not found in PATH"
		return c
	}
	c.OK, c.Fix = true, ""
	c.Detail = path
	if out, err := exec.Command(path, "--version").Output(); err == nil {
		c.Detail = fmt.Sprintf("%s (%s)", strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0], path)
	}
	return c
}

func checkCNIPlugins(dirs []string) Check {
	c := Check{Name: "cni plugins", Blocking: true, Fix: "apt-get install -y containernetworking-plugins"}
	var missing []string
	found := ""
	for _, plugin := range RequiredCNIPlugins {
		dir := findPlugin(dirs, plugin)
		if dir == "" {
			missing = append(missing, plugin)
			continue
		}
		found = dir
	}
	if len(missing) > 0 {
		c.Detail = fmt.Sprintf("missing %s in %s", strings.Join(missing, ", "), strings.Join(dirs, ":"))
		return c
	}
	c.OK, c.Fix = true, ""
	c.Detail = fmt.Sprintf("%s in %s", strings.Join(RequiredCNIPlugins, ", "), found)
	return c
}

func findPlugin(dirs []string, plugin string) string {
	for _, dir := range dirs {
		if st, err := os.Stat(filepath.Join(dir, plugin)); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return dir
		}
	}
	return ""
}

func checkCgroups() Check {
	c := Check{Name: "cgroups", Blocking: true}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		c.Detail, c.Fix = "/sys/fs/cgroup is not mounted", "mount -t cgroup2 none /sys/fs/cgroup"
		return c
	}
	c.OK = true
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		c.Detail = "v2 (unified)"
	} else {
		c.Detail = "v1"
		if _, err := os.Stat("/sys/fs/cgroup/unified"); err == nil {
			c.Detail = "v1 (hybrid)"
		}
	}
	return c
}

func checkIPForward() Check {
	c := Check{Name: "ip_forward", Blocking: false, Fix: "sysctl -w net.ipv4.ip_forward=1"}
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	if strings.TrimSpace(string(b)) != "1" {
		c.Detail = "disabled: containers cannot reach outside their networks, published ports work from the host only"
		return c
	}
	c.OK, c.Fix, c.Detail = true, "", "enabled"
	return c
}

func checkSnapshotter(ctx context.Context, address string) Check {
	c := Check{Name: "snapshotter", Blocking: true}
	ctr, err := connectProbe(ctx, address)
	if err != nil {
		c.Detail = "unknown: containerd not reachable"
		return c
	}
	defer ctr.Close()
	resp, err := ctr.IntrospectionService().Plugins(ctx, `type=="io.containerd.snapshotter.v1"`)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	usable := map[string]bool{}
	for _, p := range resp.Plugins {
		usable[p.ID] = p.InitErr == nil
	}
	switch {
	case usable["overlayfs"]:
		c.OK, c.Detail = true, "overlayfs"
	case usable["native"]:
		c.OK, c.Detail = true, "native (overlayfs is not usable here; slower, more disk)"
	default:
		c.Detail, c.Fix = "neither overlayfs nor native is usable", "modprobe overlay"
	}
	return c
}

func checkStateDir(dir string) Check {
	c := Check{Name: "state directory", Blocking: true, Fix: fmt.Sprintf("mkdir -p %s && chmod 711 %s", dir, dir)}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		c.Detail = err.Error()
		return c
	}
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		c.Detail = "not writable: " + err.Error()
		return c
	}
	f.Close()
	os.Remove(f.Name())
	c.OK, c.Fix, c.Detail = true, "", dir+" is writable"
	return c
}
