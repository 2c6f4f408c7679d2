package engine

import (
	"context"
	"time"
)

// Driver is what the reconciler needs from a container engine. Removing what
// is already gone returns nil; creating what exists returns an error wrapping
// errdefs.ErrAlreadyExists.
type Driver interface {
	// Observe reads the live state of one project ("" for every project).
	Observe(ctx context.Context, project string) (State, error)
	// PullImage makes ref present and ready to run; it returns the digest.
	PullImage(ctx context.Context, ref string, opts PullOptions) (string, error)

	CreateNetwork(ctx context.Context, spec NetworkSpec) error
	RemoveNetwork(ctx context.Context, name string) error
	CreateVolume(ctx context.Context, spec VolumeSpec) error
	RemoveVolume(ctx context.Context, name string) error

	// CreateContainer creates the container and returns its ID.
	CreateContainer(ctx context.Context, spec ContainerSpec) (string, error)
	StartContainer(ctx context.Context, id string) error
	// StopContainer sends the stop signal, waits up to timeout, then kills.
	// A zero timeout means the container's stop_grace_period; a negative
	// one kills right after the signal.
	StopContainer(ctx context.Context, id string, timeout time.Duration) error
	RemoveContainer(ctx context.Context, id string) error
	// RenameContainer gives the container id the user-visible name.
	RenameContainer(ctx context.Context, id, name string) error
}

// PullPolicy says when PullImage contacts a registry.
type PullPolicy string

const (
	PullAlways  PullPolicy = "always"
	PullMissing PullPolicy = "missing"
	PullNever   PullPolicy = "never"
)

// PullOptions tunes PullImage.
type PullOptions struct {
	Policy PullPolicy
	// Progress, when set, receives byte counts while layers move.
	Progress func(PullProgress)
}

// PullProgress reports one layer's transfer.
type PullProgress struct {
	Ref    string
	Digest string
	Done   int64
	Total  int64
	Status string // waiting, downloading, done, exists
}
