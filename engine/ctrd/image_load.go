package ctrd

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
)

// LoadedImage is one image a load or import put in the image store.
type LoadedImage struct {
	Name   string // full name; for an unnamed image, its digest
	Digest string // manifest digest
}

// Named reports whether the image has a reference name (not just a digest).
func (l LoadedImage) Named() bool { return !strings.HasPrefix(l.Name, "sha256:") }

// Load imports a docker-save or OCI archive, plain or gzip, and unpacks
// every image in it. When anything fails, the images it created are
// removed again; content it wrote is left to containerd's collector.
func (c *Client) Load(ctx context.Context, r io.Reader) (_ []LoadedImage, retErr error) {
	stream, err := compression.DecompressStream(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("load image archive: %w", err)
	}
	defer stream.Close()
	before, err := c.ImageDigests(ctx)
	if err != nil {
		return nil, err
	}
	ctx, release, err := c.withLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("load image archive: %w", err)
	}
	defer func() { release(retErr != nil) }()
	imgs, err := c.ctr.Import(ctx, stream,
		containerd.WithImageRefTranslator(fullRefOnly),
		containerd.WithSkipDigestRef(func(name string) bool { return name != "" }),
		containerd.WithDigestRef(func(d digest.Digest) string { return d.String() }),
		containerd.WithImportPlatform(hostPlatform()),
	)
	defer func() { // runs before the lease is released
		if retErr != nil {
			c.forgetNew(ctx, imgs, before)
		}
	}()
	if err != nil {
		return nil, loadError(err)
	}
	if len(imgs) == 0 {
		return nil, errors.New("load image archive: it holds no image for this platform")
	}
	return c.unpackAll(ctx, imgs)
}

func (c *Client) unpackAll(ctx context.Context, imgs []images.Image) ([]LoadedImage, error) {
	out := make([]LoadedImage, 0, len(imgs))
	for _, meta := range imgs {
		if err := c.checkPlatform(ctx, meta); err != nil {
			return nil, fmt.Errorf("load image archive: %w", err)
		}
		if _, _, err := c.ensureUnpacked(ctx, meta); err != nil {
			return nil, fmt.Errorf("load image archive: %w", err)
		}
		out = append(out, LoadedImage{Name: meta.Name, Digest: meta.Target.Digest.String()})
	}
	return out, nil
}

// checkPlatform says plainly when an image cannot run on this host, rather
// than letting unpack fail with "no match for platform".
func (c *Client) checkPlatform(ctx context.Context, meta images.Image) error {
	found, err := images.Platforms(ctx, c.ctr.ContentStore(), meta.Target)
	if err != nil || len(found) == 0 {
		return nil // unpack reports what is wrong
	}
	host := hostPlatform()
	names := make([]string, 0, len(found))
	for _, p := range found {
		if host.Match(p) {
			return nil
		}
		names = append(names, platforms.Format(p))
	}
	return fmt.Errorf("image %s is for %s, not for this host (%s)", FamiliarRef(meta.Name), strings.Join(names, ", "), platforms.Format(platforms.DefaultSpec()))
}

// forgetNew removes images that did not exist, or pointed elsewhere, before.
func (c *Client) forgetNew(ctx context.Context, imgs []images.Image, before map[string]string) {
	for _, img := range imgs {
		if before[img.Name] != img.Target.Digest.String() {
			c.forgetImage(ctx, img.Name)
		}
	}
}

// fullRefOnly names an image from an OCI ref.name annotation only when the
// annotation is a whole reference; a bare tag ("latest") says nothing about
// the repository, so such an image is named by its digest.
func fullRefOnly(refName string) string {
	if !strings.ContainsAny(refName, "/:") {
		return ""
	}
	name, err := NormalizeRef(refName)
	if err != nil {
		return ""
	}
	return name
}

// loadError explains why an archive could not be read.
func loadError(err error) error {
	switch {
	case errors.Is(err, images.ErrEmptyWalk):
		return fmt.Errorf("load image archive: it holds no image for this host (%s)", platforms.Format(platforms.DefaultSpec()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("load image archive: the archive is truncated (%w)", err)
	case errors.Is(err, tar.ErrHeader), strings.Contains(err.Error(), "archive/tar"), strings.Contains(err.Error(), "gzip"):
		return fmt.Errorf("load image archive: the archive is corrupt, not a tar file (%w)", err)
	case strings.Contains(err.Error(), "unrecognized image format"):
		return fmt.Errorf("load image archive: not an image archive: it has neither an OCI layout (oci-layout, index.json) nor a docker save manifest.json (%w)", err)
	}
	return fmt.Errorf("load image archive: %w", err)
}
