package engine

import "time"

// Status is a container's observed task state.
type Status string

const (
	StatusCreated Status = "created" // container exists, no task
	StatusRunning Status = "running"
	StatusPaused  Status = "paused"
	StatusExited  Status = "exited"
	StatusUnknown Status = "unknown"
)

// State is what one observation of the host found.
type State struct {
	Containers []Container
	Networks   []Network
	Volumes    []Volume
	// Images maps a normalised reference to its manifest (target) digest, for
	// the images present in the namespace.
	Images map[string]string
}

// Container is one observed container.
type Container struct {
	ID         string
	Name       string
	Project    string
	Service    string
	Number     int
	OneOff     bool
	ConfigHash string
	Image      string // reference it was created from
	ImageID    string // digest it was created from
	Command    string // entrypoint and command as run, for display
	Labels     map[string]string
	Status     Status
	ExitCode   int
	Pid        int
	CreatedAt  time.Time
	StartedAt  time.Time
	Networks   []string // full network names it is attached to
	Volumes    []string // volume names it mounts
	Ports      []PortBinding
	Health     string            // "", starting, healthy, unhealthy
	Addresses  map[string]string // network name → IPv4 address, while running
	// Aliases are the names the container answers to on each network
	// (network name → aliases, as created), for the DNS server.
	Aliases  map[string][]string
	Hostname string // as the container sees it (the service's, else the short ID)

	// FinishedAt is when the last run ended (zero while it runs).
	FinishedAt time.Time
	// Restart is the policy the container was created with; RestartCount
	// how many times the daemon restarted it since the user last started
	// it; UserStopped that the user stopped or killed it (stop, kill, down,
	// Ctrl-C), so no policy restarts it until the user starts it again.
	Restart      RestartPolicy
	RestartCount int
	UserStopped  bool
}

// Network is one observed network.
type Network struct {
	Name       string
	Project    string
	ConfigHash string
	Subnet     string
	Gateway    string
	Bridge     string
	Internal   bool
	Labels     map[string]string
}

// Volume is one observed named volume.
type Volume struct {
	Name       string
	Project    string
	ConfigHash string
	Mountpoint string
	Labels     map[string]string
}

// ProjectContainers returns the containers of project, in the order observed.
func (s State) ProjectContainers(project string) []Container {
	var out []Container
	for _, c := range s.Containers {
		if c.Project == project {
			out = append(out, c)
		}
	}
	return out
}
