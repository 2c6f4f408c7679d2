package reconcile

import (
	"errors"
	"fmt"
	"time"

	"github.com/stackdev/stack/engine"
)

// Options are `stack up`'s decisions, as compose names them.
type Options struct {
	ForceRecreate      bool // recreate targeted services' containers even when up to date
	NoRecreate         bool // never recreate existing containers
	AlwaysRecreateDeps bool // recreate the dependencies of targeted services too
	NoDeps             bool // do not touch the dependencies of targeted services
	RemoveOrphans      bool // stop and remove containers of services no longer declared
	NoStart            bool // create, never start
	// Pull overrides every service's pull_policy when set.
	Pull engine.PullPolicy
	// Services are the targeted services; empty means all. Their
	// dependencies are planned too (unless NoDeps); the containers of other
	// services are left alone and never counted as orphans.
	Services []string
	// Timeout is the stop timeout; 0 lets the driver use the service's
	// stop_grace_period, a negative one stops at once (-t 0).
	Timeout time.Duration
}

func (o Options) validate(d desiredIndex) error {
	if o.ForceRecreate && o.NoRecreate {
		return errors.New("--force-recreate and --no-recreate cannot be used together: choose one")
	}
	switch o.Pull {
	case "", engine.PullAlways, engine.PullMissing, engine.PullNever:
	default:
		return fmt.Errorf("unknown pull policy %q: use always, missing or never", o.Pull)
	}
	var errs []error
	for _, s := range o.Services {
		if _, ok := d.services[s]; !ok {
			errs = append(errs, fmt.Errorf("no such service: %s", s))
		}
	}
	return errors.Join(errs...)
}

// recreate is how a service's existing containers are treated.
type recreate int

const (
	recreateDiverged recreate = iota // when hash, image, network or volume differ
	recreateForce
	recreateNever
)

// strategy returns the recreate strategy for a targeted service or for a
// dependency pulled in by one, as compose's up does.
func (o Options) strategy(targeted bool) recreate {
	switch {
	case o.NoRecreate:
		return recreateNever
	case targeted && o.ForceRecreate, !targeted && o.AlwaysRecreateDeps:
		return recreateForce
	}
	return recreateDiverged
}

// DownOptions are `stack down`'s flags.
type DownOptions struct {
	Volumes       bool   // remove the project's named volumes (never external ones)
	RemoveOrphans bool   // also remove containers of undeclared services and one-off containers
	RMI           string // "", "local" or "all"
	Timeout       time.Duration
}
