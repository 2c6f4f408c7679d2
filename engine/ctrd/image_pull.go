package ctrd

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"

	"github.com/stackdev/stack/engine"
)

// PullConfig tunes Pull.
type PullConfig struct {
	Registry RegistryConfig
	// Progress, when set, receives each layer's changes while bytes move.
	Progress func(engine.PullProgress)
}

// hostPlatform matches images for this host (linux/GOARCH); multi-arch
// indexes resolve to it.
func hostPlatform() platforms.MatchComparer {
	return platforms.Only(platforms.DefaultSpec())
}

// Pull fetches ref from its registry and unpacks it into the client's
// snapshotter. It returns the normalized name and the manifest digest. When
// the pull fails, no image record it created is left behind.
func (c *Client) Pull(ctx context.Context, ref string, cfg PullConfig) (name, dgst string, retErr error) {
	name, err := NormalizeRef(ref)
	if err != nil {
		return "", "", err
	}
	existed := c.imageExists(ctx, name)
	ctx, release, err := c.withLease(ctx)
	if err != nil {
		return "", "", fmt.Errorf("pull %s: %w", name, err)
	}
	defer func() {
		if retErr != nil && !existed {
			c.forgetImage(ctx, name)
		}
		release(retErr != nil)
	}()
	resolver, err := cfg.Registry.newResolver(nil)
	if err != nil {
		return "", "", fmt.Errorf("pull %s: %w", name, err)
	}
	cs := c.ctr.ContentStore()
	tracker := newProgressTracker(name, cfg.Progress, pullProbe(cs))
	stop := tracker.run(ctx)
	img, err := c.ctr.Pull(ctx, name,
		containerd.WithResolver(resolver),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(c.Snapshotter(ctx)),
		containerd.WithPlatformMatcher(hostPlatform()),
		containerd.WithImageHandler(tracker.handler(contentPresent(cs))),
	)
	stop()
	if err != nil {
		return "", "", registryError("pull", name, err)
	}
	return name, img.Target().Digest.String(), nil
}

// PullImage makes ref present and unpacked, contacting the registry as the
// policy says (missing when empty), and returns its manifest digest.
func (c *Client) PullImage(ctx context.Context, ref string, opts engine.PullOptions) (string, error) {
	name, err := NormalizeRef(ref)
	if err != nil {
		return "", err
	}
	if opts.Policy != engine.PullAlways {
		dgst, err := c.presentImage(ctx, name)
		switch {
		case err == nil:
			return dgst, nil
		case !errdefs.IsNotFound(err):
			return "", err
		case opts.Policy == engine.PullNever:
			return "", fmt.Errorf("image %s is not present and the pull policy is never (load or pull it first): %w", name, err)
		}
	}
	cfg, err := RegistryConfigFromEnv()
	if err != nil {
		return "", err
	}
	_, dgst, err := c.Pull(ctx, name, PullConfig{Registry: cfg, Progress: opts.Progress})
	return dgst, err
}

// presentImage returns the digest of a local image, unpacking it first if
// its layers are not in the snapshotter yet (as after a load).
func (c *Client) presentImage(ctx context.Context, name string) (string, error) {
	meta, err := c.ctr.ImageService().Get(ctx, name)
	if err != nil {
		return "", err
	}
	if _, _, err := c.ensureUnpacked(ctx, meta); err != nil {
		return "", err
	}
	return meta.Target.Digest.String(), nil
}

// ensureUnpacked makes sure the image's layers are unpacked in the
// snapshotter: one Stat of the chain's top snapshot, as containerd's
// IsUnpacked ends with, and the unpack when it is not there. It returns the
// image and its facts, which a container's creation goes on with.
func (c *Client) ensureUnpacked(ctx context.Context, meta images.Image) (containerd.Image, imageFacts, error) {
	img := containerd.NewImageWithPlatform(c.ctr, meta, hostPlatform())
	facts, err := c.imageFacts(ctx, img)
	if err != nil {
		return nil, facts, err
	}
	sn := c.Snapshotter(ctx)
	if _, err := c.ctr.SnapshotService(sn).Stat(ctx, facts.chainID); err == nil {
		return img, facts, nil
	}
	if err := img.Unpack(ctx, sn); err != nil {
		return nil, facts, fmt.Errorf("unpack image %s into %s: %w", meta.Name, sn, err)
	}
	return img, facts, nil
}

func (c *Client) imageExists(ctx context.Context, name string) bool {
	_, err := c.ctr.ImageService().Get(ctx, name)
	return err == nil
}

// forgetImage removes an image record left by a failed operation. It runs
// on a context that outlives a cancelled operation.
func (c *Client) forgetImage(ctx context.Context, name string) {
	err := c.ctr.ImageService().Delete(context.WithoutCancel(ctx), name)
	if err != nil && !errdefs.IsNotFound(err) {
		c.opts.Logger.Warn("remove half-created image", "image", name, "error", err)
	}
}

// ImageDigests maps each image name in the namespace to its manifest
// (target) digest.
func (c *Client) ImageDigests(ctx context.Context) (map[string]string, error) {
	imgs, err := c.ctr.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make(map[string]string, len(imgs))
	for _, img := range imgs {
		out[img.Name] = img.Target.Digest.String()
	}
	return out, nil
}
