package engine

// NetworkSpec describes a user-defined bridge network.
type NetworkSpec struct {
	Name       string // full name, <project>_<name>
	Project    string
	Key        string // the name in the compose file
	ConfigHash string
	Driver     string // bridge
	Subnet     string // CIDR; empty lets the driver choose a free one
	Gateway    string
	IPRange    string
	Internal   bool
	External   bool
	Labels     map[string]string
}

// VolumeSpec describes a named volume.
type VolumeSpec struct {
	Name       string // full name, <project>_<name>
	Project    string
	Key        string
	ConfigHash string
	Driver     string // local
	DriverOpts map[string]string
	External   bool
	Labels     map[string]string
}
