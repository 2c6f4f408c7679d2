package compose

import "github.com/stackdev/stack/engine"

// Desired is what the compose files ask the host to run.
type Desired struct {
	Project     string
	WorkingDir  string
	ConfigFiles []string
	// Services in dependency order (a service after everything it depends on).
	Services []Service
	// Declared names every service of the compose files, also those left out
	// by profiles or by the service selection: a container of a declared
	// service is never an orphan.
	Declared []string
	// Containers holds one spec per replica, for every selected service.
	Containers []engine.ContainerSpec
	Networks   []engine.NetworkSpec
	Volumes    []engine.VolumeSpec
}

// Service is the per-service information the planner needs beyond the
// container specs: how many replicas, what it waits for, and how to get its
// image.
type Service struct {
	Name       string
	Image      string
	Replicas   int
	DependsOn  []engine.Dependency
	PullPolicy engine.PullPolicy // "" means missing
	// NoAttach is attach: false: an attached up does not follow its logs
	// unless --attach names it.
	NoAttach bool
	// Networks and Volumes it uses, by full name.
	Networks []string
	Volumes  []string
}

// OneShots are the services another one depends on with condition
// service_completed_successfully: they run to completion rather than stay up.
func (d Desired) OneShots() map[string]bool {
	out := map[string]bool{}
	for _, s := range d.Services {
		for _, dep := range s.DependsOn {
			if dep.Condition == ConditionCompleted {
				out[dep.Service] = true
			}
		}
	}
	return out
}

// ConditionCompleted is the depends_on condition that makes a one-shot.
const ConditionCompleted = "service_completed_successfully"

// Service returns the named service and whether it exists.
func (d Desired) Service(name string) (Service, bool) {
	for _, s := range d.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}
