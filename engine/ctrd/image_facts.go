package ctrd

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// imageFacts is what creating a container needs from its image: the image
// configuration and the chain ID of its layers (the snapshot the rootfs is
// prepared on). Content is addressed by digest, so neither ever changes for
// a manifest: a Client reads them once per image instead of once per
// container, where containerd's client read the manifest and the
// configuration four times over (about eight calls to containerd per
// container).
type imageFacts struct {
	config ocispec.Image
	// configDesc carries the configuration blob in Data, so that
	// oci.WithImageConfig finds it there instead of in the content store.
	configDesc ocispec.Descriptor
	chainID    string
}

type imageFactsCache struct {
	mu      sync.Mutex
	byImage map[string]imageFacts // by manifest digest (Target)
}

// imageFacts returns the facts of img, read on first use.
func (c *Client) imageFacts(ctx context.Context, img containerd.Image) (imageFacts, error) {
	key := img.Target().Digest.String()
	c.images.mu.Lock()
	f, ok := c.images.byImage[key]
	c.images.mu.Unlock()
	if ok {
		return f, nil
	}
	desc, err := img.Config(ctx)
	if err != nil {
		return imageFacts{}, fmt.Errorf("image %s: %w", img.Name(), err)
	}
	blob, err := content.ReadBlob(ctx, img.ContentStore(), desc)
	if err != nil {
		return imageFacts{}, fmt.Errorf("image %s: read its configuration: %w", img.Name(), err)
	}
	if err := json.Unmarshal(blob, &f.config); err != nil {
		return imageFacts{}, fmt.Errorf("image %s: configuration: %w", img.Name(), err)
	}
	desc.Data = blob
	f.configDesc = desc
	f.chainID = identity.ChainID(f.config.RootFS.DiffIDs).String()
	c.images.mu.Lock()
	if c.images.byImage == nil {
		c.images.byImage = map[string]imageFacts{}
	}
	c.images.byImage[key] = f
	c.images.mu.Unlock()
	return f, nil
}

// withRootfsSnapshot prepares the container's writable rootfs snapshot on
// the image's unpacked layers, as containerd's WithNewSnapshot does for a
// snapshot without ID remapping, from the chain ID already known.
func withRootfsSnapshot(id string, f imageFacts) containerd.NewContainerOpts {
	return func(ctx context.Context, client *containerd.Client, c *containers.Container) error {
		if c.Snapshotter == "" {
			return fmt.Errorf("container %s: no snapshotter set for its rootfs: %w", id, errdefs.ErrInvalidArgument)
		}
		if _, err := client.SnapshotService(c.Snapshotter).Prepare(ctx, id, f.chainID); err != nil {
			return err
		}
		c.SnapshotKey = id
		return nil
	}
}

// configOnlyImage is the image as oci.WithImageConfig reads it: the
// configuration descriptor, whose Data already holds the blob.
type configOnlyImage struct {
	desc  ocispec.Descriptor
	store content.Store
}

func (i configOnlyImage) Config(context.Context) (ocispec.Descriptor, error) { return i.desc, nil }
func (i configOnlyImage) ContentStore() content.Store                        { return i.store }
