package ctrd

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"

	"github.com/stackdev/stack/engine"
)

// PushConfig tunes Push.
type PushConfig struct {
	Registry RegistryConfig
	// Progress, when set, receives each layer's changes while bytes move.
	Progress func(engine.PullProgress)
}

// Push sends a local image to the registry its name points at and returns
// the pushed manifest digest.
func (c *Client) Push(ctx context.Context, ref string, cfg PushConfig) (string, error) {
	meta, err := c.resolveImage(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	name := meta.Name
	// A fresh tracker and resolver for every push: a reused one remembers
	// digests it pushed before and skips them, even to another repository.
	tracker := docker.NewInMemoryTracker()
	resolver, err := cfg.Registry.newResolver(tracker)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", name, err)
	}
	progress := newProgressTracker(name, cfg.Progress, pushProbe(tracker))
	stop := progress.run(ctx)
	err = c.ctr.Push(ctx, name, meta.Target,
		containerd.WithResolver(resolver),
		containerd.WithImageHandlerWrapper(func(h images.Handler) images.Handler {
			return images.Handlers(progress.handler(nil), h)
		}),
	)
	stop()
	if err != nil {
		return "", registryError("push", name, err)
	}
	return meta.Target.Digest.String(), nil
}
