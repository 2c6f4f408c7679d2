package engine

import "time"

// ContainerSpec is everything needed to create one container replica. It is
// split by concern so that each part is built, hashed and applied on its own.
type ContainerSpec struct {
	Name       string // <project>-<service>-<n> or container_name
	Project    string
	Service    string
	Number     int
	OneOff     bool
	Image      string // reference as written, normalised (docker.io/library/...)
	ConfigHash string
	Labels     map[string]string
	// Annotations become OCI spec annotations.
	Annotations map[string]string
	DependsOn   []Dependency

	Process   Process
	Mounts    []Mount
	Files     []File // secrets and configs, materialised by the driver
	Network   NetworkConfig
	Resources Resources
	Security  Security
	Restart   RestartPolicy
	Health    *Healthcheck
	Logging   Logging
}

// Dependency is one depends_on edge, kept on the spec so ordering and
// restarts can be decided without the compose model.
type Dependency struct {
	Service   string
	Condition string // service_started, service_healthy, service_completed_successfully
	Restart   bool
	Required  bool
}

// Process describes what runs. A nil Entrypoint or Command means "the
// image's"; an empty non-nil one means "explicitly none".
type Process struct {
	Entrypoint      []string
	Command         []string
	Env             []string // KEY=VALUE, sorted
	WorkingDir      string
	User            string
	GroupAdd        []string
	TTY             bool
	StdinOpen       bool
	Init            bool
	StopSignal      string
	StopGracePeriod time.Duration
	Hostname        string
	Domainname      string
}

// MountType says what a Mount's Source names.
type MountType string

const (
	MountBind   MountType = "bind"
	MountVolume MountType = "volume"
	MountTmpfs  MountType = "tmpfs"
)

// Mount is one filesystem mount inside the container.
type Mount struct {
	Type           MountType
	Source         string // host path for bind, volume name for volume, empty for tmpfs
	Target         string
	ReadOnly       bool
	Propagation    string // rprivate, shared, slave, ...
	CreateHostPath bool
	NoCopy         bool
	TmpfsSize      int64
	TmpfsMode      uint32
}

// File is a secret or config to place at Target with the given owner and mode.
type File struct {
	Kind    string // "secret" or "config"
	Name    string
	Target  string
	Content []byte
	UID     int
	GID     int
	Mode    uint32
}

// NetworkConfig is how the container is wired.
type NetworkConfig struct {
	// Mode is "" (attach to Networks), "none", "host" or "container:<name>".
	Mode       string
	Networks   []NetworkAttachment // ordered by priority, highest first
	Ports      []PortBinding
	Expose     []string
	ExtraHosts []string // "host:ip"; ip may be host-gateway
	DNS        []string
	DNSSearch  []string
	DNSOptions []string
}

// NetworkAttachment attaches a container to one network.
type NetworkAttachment struct {
	Network     string // full network name, <project>_<name> or external name
	Aliases     []string
	IPv4Address string
	Priority    int
}

// PortBinding publishes ContainerPort on HostIP:HostPort.
type PortBinding struct {
	HostIP        string
	HostPort      uint16
	ContainerPort uint16
	Protocol      string // tcp or udp
}

// Resources are cgroup limits. Zero means unset.
type Resources struct {
	MemoryLimit       int64
	MemoryReservation int64
	MemorySwap        int64
	NanoCPUs          int64
	CPUShares         int64
	CPUSet            string
	PidsLimit         int64
	ShmSize           int64
	Ulimits           []Ulimit
	Devices           []Device
}

// Ulimit is one rlimit.
type Ulimit struct {
	Name string
	Soft int64
	Hard int64
}

// Device maps a host device into the container.
type Device struct {
	Host        string
	Container   string
	Permissions string
}

// Security holds privileges, capabilities and namespace sharing.
type Security struct {
	Privileged      bool
	ReadOnlyRootfs  bool
	CapAdd          []string
	CapDrop         []string
	NoNewPrivileges bool
	Sysctls         map[string]string
	IPC             string // "", "private", "shareable", "host", "container:<name>"
	PID             string // "", "host", "container:<name>"
}

// RestartPolicy is stored now and enforced by the per-host daemon.
type RestartPolicy struct {
	Name        string // no, always, on-failure, unless-stopped
	MaxAttempts int
	Delay       time.Duration
	Window      time.Duration
}

// Healthcheck as compose declares it.
type Healthcheck struct {
	Test          []string // CMD..., CMD-SHELL ..., or NONE
	Interval      time.Duration
	Timeout       time.Duration
	Retries       int
	StartPeriod   time.Duration
	StartInterval time.Duration
}

// Logging selects the log driver and its options.
type Logging struct {
	Driver  string // json-file (default) or none
	Options map[string]string
}
