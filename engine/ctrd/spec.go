package ctrd

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stackdev/stack/engine"
)

// specInput is what the OCI spec is built from, besides the engine spec.
type specInput struct {
	id    string
	spec  engine.ContainerSpec
	image containerd.Image
	// imageFacts are the image's configuration and layers, read once per
	// image by the Client (imageFacts).
	imageFacts imageFacts
	mounts     []specs.Mount // includes the init binary when the spec asks for one
	// namespaces to join instead of creating (network, ipc, pid).
	namespaces []specs.LinuxNamespace
	hostNS     []specs.LinuxNamespaceType
}

// specOpts turns the container spec into OCI spec options: the image's
// configuration first, then each concern's overrides.
func specOpts(in specInput) ([]oci.SpecOpts, error) {
	opts := []oci.SpecOpts{oci.WithImageConfig(in.configImage())}
	proc, err := processOpts(in)
	if err != nil {
		return nil, err
	}
	opts = append(opts, proc...)
	opts = append(opts, oci.WithMounts(in.mounts))
	opts = append(opts, resourceOpts(in.spec.Resources)...)
	opts = append(opts, securityOpts(in.spec.Security)...)
	opts = append(opts, namespaceOpts(in)...)
	if len(in.spec.Annotations) > 0 {
		opts = append(opts, oci.WithAnnotations(in.spec.Annotations))
	}
	return opts, nil
}

// initTarget is where the init binary is mounted, as Docker does.
const initTarget = "/sbin/docker-init"

// initBinaries are static init programs that reap zombies and forward
// signals, in order of preference; Debian's tini package ships tini-static.
var initBinaries = []string{"docker-init", "tini-static", "catatonit"}

// initMount finds a static init on the host and mounts it read-only.
func initMount() (specs.Mount, error) {
	for _, name := range initBinaries {
		if path, err := exec.LookPath(name); err == nil {
			return specs.Mount{Type: "bind", Source: path, Destination: initTarget, Options: []string{"rbind", "ro", "rprivate"}}, nil
		}
	}
	return specs.Mount{}, fmt.Errorf("init: true needs a static init on the host (%s): apt-get install tini", strings.Join(initBinaries, ", "))
}

// processArgs applies Docker's rules: a service entrypoint replaces the
// image's entrypoint and drops its command; a service command replaces the
// image's command.
func processArgs(p engine.Process, img ocispec.ImageConfig) []string {
	ep, cmd := img.Entrypoint, img.Cmd
	if p.Entrypoint != nil {
		ep, cmd = p.Entrypoint, nil
	}
	if p.Command != nil {
		cmd = p.Command
	}
	return append(append([]string{}, ep...), cmd...)
}

func processOpts(in specInput) ([]oci.SpecOpts, error) {
	p := in.spec.Process
	args := processArgs(p, in.imageFacts.config.Config)
	if len(args) == 0 {
		return nil, fmt.Errorf("container %s: no command: the image %s has none and the service sets neither entrypoint nor command", in.spec.Name, in.spec.Image)
	}
	if p.Init {
		args = append([]string{initTarget, "--"}, args...)
	}
	hostname := containerHostname(in.id, in.spec)
	opts := []oci.SpecOpts{
		oci.WithProcessArgs(args...),
		oci.WithEnv(append([]string{"HOSTNAME=" + hostname}, p.Env...)),
	}
	if !hostNamespace(in, specs.UTSNamespace) {
		opts = append(opts, oci.WithHostname(hostname))
		if p.Domainname != "" {
			// runc 1.1 ignores the spec's domainname; the UTS sysctl sets it.
			opts = append(opts, oci.WithDomainname(p.Domainname), withSysctls(map[string]string{"kernel.domainname": p.Domainname}))
		}
	}
	if p.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(p.WorkingDir))
	}
	if p.User != "" {
		opts = append(opts, oci.WithUser(p.User))
	}
	if len(p.GroupAdd) > 0 {
		opts = append(opts, oci.WithAppendAdditionalGroups(p.GroupAdd...))
	}
	if p.TTY {
		opts = append(opts, oci.WithTTY)
	}
	return opts, nil
}

// containerHostname is the service's hostname, else the short ID as Docker
// does.
func containerHostname(id string, spec engine.ContainerSpec) string {
	if spec.Process.Hostname != "" {
		return spec.Process.Hostname
	}
	return id[:12]
}

func hostNamespace(in specInput, t specs.LinuxNamespaceType) bool {
	for _, h := range in.hostNS {
		if h == t {
			return true
		}
	}
	return false
}

func namespaceOpts(in specInput) []oci.SpecOpts {
	var opts []oci.SpecOpts
	for _, t := range in.hostNS {
		opts = append(opts, oci.WithHostNamespace(t))
	}
	for _, ns := range in.namespaces {
		opts = append(opts, oci.WithLinuxNamespace(ns))
	}
	return opts
}

func resourceOpts(r engine.Resources) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if r.MemoryLimit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(r.MemoryLimit)))
	}
	if r.MemorySwap != 0 {
		opts = append(opts, oci.WithMemorySwap(r.MemorySwap))
	}
	if r.MemoryReservation > 0 {
		opts = append(opts, withMemoryReservation(r.MemoryReservation))
	}
	if r.NanoCPUs > 0 {
		const period = 100000
		opts = append(opts, oci.WithCPUCFS(r.NanoCPUs*period/1e9, period))
	}
	if r.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(uint64(r.CPUShares)))
	}
	if r.CPUSet != "" {
		opts = append(opts, oci.WithCPUs(r.CPUSet))
	}
	if r.PidsLimit != 0 {
		opts = append(opts, oci.WithPidsLimit(r.PidsLimit))
	}
	if r.ShmSize > 0 {
		opts = append(opts, oci.WithDevShmSize(r.ShmSize/1024))
	}
	for _, u := range r.Ulimits {
		opts = append(opts, oci.WithRlimit(&specs.POSIXRlimit{
			Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: uint64(u.Soft), Hard: uint64(u.Hard),
		}))
	}
	for _, d := range r.Devices {
		perms := d.Permissions
		if perms == "" {
			perms = "rwm"
		}
		target := d.Container
		if target == "" {
			target = d.Host
		}
		opts = append(opts, oci.WithDevices(d.Host, target, perms))
	}
	return opts
}

func withMemoryReservation(n int64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if s.Linux.Resources.Memory == nil {
			s.Linux.Resources.Memory = &specs.LinuxMemory{}
		}
		s.Linux.Resources.Memory.Reservation = &n
		return nil
	}
}

func securityOpts(sec engine.Security) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if sec.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices,
			oci.WithWriteableSysfs, oci.WithWriteableCgroupfs, oci.WithMaskedPaths(nil), oci.WithReadonlyPaths(nil))
	}
	if caps := capNames(sec.CapDrop); len(caps) > 0 {
		if containsAll(caps) {
			opts = append(opts, oci.WithCapabilities(nil))
		} else {
			opts = append(opts, oci.WithDroppedCapabilities(caps))
		}
	}
	if caps := capNames(sec.CapAdd); len(caps) > 0 {
		if containsAll(caps) {
			opts = append(opts, oci.WithAllKnownCapabilities)
		} else {
			opts = append(opts, oci.WithAddedCapabilities(caps))
		}
	}
	if sec.ReadOnlyRootfs {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	// containerd's default spec sets no_new_privs; Docker's does not, and
	// setuid programs must work unless security_opt asks otherwise.
	opts = append(opts, withNoNewPrivileges(sec.NoNewPrivileges))
	if len(sec.Sysctls) > 0 {
		opts = append(opts, withSysctls(sec.Sysctls))
	}
	return opts
}

func withNoNewPrivileges(on bool) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.NoNewPrivileges = on
		return nil
	}
}

// capNames normalises "net_admin" and "NET_ADMIN" to "CAP_NET_ADMIN".
func capNames(in []string) []string {
	var out []string
	for _, c := range in {
		c = strings.ToUpper(c)
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	return out
}

func containsAll(caps []string) bool {
	for _, c := range caps {
		if c == "ALL" {
			return true
		}
	}
	return false
}

func withSysctls(sysctls map[string]string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		for k, v := range sysctls {
			s.Linux.Sysctl[k] = v
		}
		return nil
	}
}

// configImage is the image for oci.WithImageConfig: its configuration
// descriptor with the blob inside, so that no content is read again.
func (in specInput) configImage() oci.Image {
	img := configOnlyImage{desc: in.imageFacts.configDesc}
	if in.image != nil {
		img.store = in.image.ContentStore()
	}
	return img
}
