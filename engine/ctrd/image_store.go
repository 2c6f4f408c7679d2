package ctrd

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// ImageSummary is one image as `stack image ls` shows it.
type ImageSummary struct {
	Name       string // full name in containerd
	Repository string // familiar form, "<none>" for an unnamed image
	Tag        string // "<none>" when named by digest
	Digest     string // manifest (target) digest; its first 12 hex are the ID
	Created    time.Time
	Size       int64 // content size for this host's platform
}

// ID is the short image ID docker prints.
func (s ImageSummary) ID() string { return shortID(s.Digest) }

func shortID(dgst string) string {
	hex := strings.TrimPrefix(dgst, "sha256:")
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}

// ListImages returns the namespace's images sorted by name.
func (c *Client) ListImages(ctx context.Context) ([]ImageSummary, error) {
	imgs, err := c.ctr.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]ImageSummary, 0, len(imgs))
	for _, meta := range imgs {
		out = append(out, c.summarize(ctx, meta))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (c *Client) summarize(ctx context.Context, meta images.Image) ImageSummary {
	s := ImageSummary{Name: meta.Name, Digest: meta.Target.Digest.String(), Created: meta.CreatedAt}
	s.Repository, s.Tag = splitName(meta.Name)
	img := containerd.NewImageWithPlatform(c.ctr, meta, hostPlatform())
	if size, err := img.Size(ctx); err == nil {
		s.Size = size
	}
	if spec, err := img.Spec(ctx); err == nil && spec.Created != nil {
		s.Created = *spec.Created
	}
	return s
}

// splitName gives docker's REPOSITORY and TAG columns for an image name.
func splitName(name string) (repo, tag string) {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil || strings.HasPrefix(name, "sha256:") {
		return "<none>", "<none>"
	}
	repo = reference.FamiliarName(named)
	tag = "<none>"
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	return repo, tag
}

// resolveImage finds an image by name as typed (short or full), or by an
// unambiguous prefix of its ID (manifest digest).
func (c *Client) resolveImage(ctx context.Context, ref string) (images.Image, error) {
	img, _, err := c.lookupImage(ctx, ref)
	return img, err
}

// lookupImage is resolveImage that also says whether ref was an ID.
func (c *Client) lookupImage(ctx context.Context, ref string) (_ images.Image, byID bool, _ error) {
	is := c.ctr.ImageService()
	if img, err := is.Get(ctx, ref); err == nil {
		return img, false, nil
	}
	if name, err := NormalizeRef(ref); err == nil {
		if img, err := is.Get(ctx, name); err == nil {
			return img, false, nil
		}
	}
	img, err := c.imageByID(ctx, ref)
	return img, err == nil, err
}

func (c *Client) imageByID(ctx context.Context, id string) (images.Image, error) {
	hex := strings.TrimPrefix(id, "sha256:")
	if len(hex) < 4 || strings.Trim(hex, "0123456789abcdef") != "" {
		return images.Image{}, notFound(id)
	}
	imgs, err := c.ctr.ImageService().List(ctx)
	if err != nil {
		return images.Image{}, fmt.Errorf("list images: %w", err)
	}
	var found []images.Image
	digests := map[string]bool{}
	for _, img := range imgs {
		if strings.HasPrefix(img.Target.Digest.Encoded(), hex) {
			found = append(found, img)
			digests[img.Target.Digest.String()] = true
		}
	}
	switch {
	case len(found) == 0:
		return images.Image{}, notFound(id)
	case len(digests) > 1:
		return images.Image{}, fmt.Errorf("image ID %s is ambiguous: it matches %d images", id, len(digests))
	}
	return found[0], nil
}

func notFound(ref string) error {
	return fmt.Errorf("no such image: %s (%w)", ref, errdefs.ErrNotFound)
}

// RemoveImage deletes an image by name, or every name of an image given by
// ID, waiting for containerd to collect its content. It returns the names
// removed.
func (c *Client) RemoveImage(ctx context.Context, ref string) ([]string, error) {
	img, byID, err := c.lookupImage(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("remove image %s: %w", ref, err)
	}
	names := []string{img.Name}
	if byID {
		names, err = c.namesOf(ctx, img.Target.Digest.String())
		if err != nil {
			return nil, err
		}
	}
	for i, name := range names {
		var opts []images.DeleteOpt
		if i == len(names)-1 {
			opts = append(opts, images.SynchronousDelete())
		}
		if err := c.ctr.ImageService().Delete(ctx, name, opts...); err != nil && !errdefs.IsNotFound(err) {
			return names[:i], fmt.Errorf("remove image %s: %w", name, err)
		}
	}
	return names, nil
}

func (c *Client) namesOf(ctx context.Context, dgst string) ([]string, error) {
	imgs, err := c.ctr.ImageService().List(ctx, "target.digest=="+dgst)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var names []string
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	return names, nil
}

// TagImage gives the image src the additional name dst, replacing what dst
// named before.
func (c *Client) TagImage(ctx context.Context, src, dst string) (string, error) {
	img, err := c.resolveImage(ctx, src)
	if err != nil {
		return "", fmt.Errorf("tag %s: %w", src, err)
	}
	name, err := NormalizeRef(dst)
	if err != nil {
		return "", err
	}
	if err := c.putImage(ctx, images.Image{Name: name, Target: img.Target, Labels: img.Labels}); err != nil {
		return "", fmt.Errorf("tag %s as %s: %w", src, name, err)
	}
	return name, nil
}

// putImage creates the image record, or points an existing one at the new
// target.
func (c *Client) putImage(ctx context.Context, img images.Image) error {
	is := c.ctr.ImageService()
	if _, err := is.Create(ctx, img); err == nil || !errdefs.IsAlreadyExists(err) {
		return err
	}
	_, err := is.Update(ctx, img, "target", "labels")
	return err
}

// SaveImages writes the images as one OCI archive (with a docker
// manifest.json too, so docker load reads it), for this host's platform.
func (c *Client) SaveImages(ctx context.Context, w io.Writer, refs []string) error {
	is := c.ctr.ImageService()
	opts := []archive.ExportOpt{archive.WithPlatform(hostPlatform())}
	for _, ref := range refs {
		img, err := c.resolveImage(ctx, ref)
		if err != nil {
			return fmt.Errorf("save %s: %w", ref, err)
		}
		opts = append(opts, archive.WithImage(is, img.Name))
	}
	if err := c.ctr.Export(ctx, w, opts...); err != nil {
		return fmt.Errorf("save %s: %w", strings.Join(refs, " "), err)
	}
	return nil
}
