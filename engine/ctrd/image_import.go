package ctrd

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImportOptions tune ImportRootFS, as docker import's flags do.
type ImportOptions struct {
	Changes []string // Dockerfile instructions: "CMD [\"sh\"]", "ENV K=V", ...
	Message string   // history comment
	Source  string   // where the tarball came from, for the default comment
}

const defaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ErrLayerEscape marks a tar entry whose path leaves the layer.
var ErrLayerEscape = errors.New("path leaves the root filesystem")

// ImportRootFS turns a root filesystem tarball (plain or gzip) into a
// one-layer image named ref, like docker import, and unpacks it. The
// layer, config and manifest are written under a lease, so nothing is kept
// when any step fails; an image record is created only at the end.
func (c *Client) ImportRootFS(ctx context.Context, r io.Reader, ref string, opts ImportOptions) (_ LoadedImage, retErr error) {
	name, err := NormalizeRef(ref)
	if err != nil {
		return LoadedImage{}, err
	}
	// docker's daemon adds PATH to containers whose image lacks it;
	// containerd does not, so the imported image carries docker's default.
	cfg, err := ApplyChanges(ocispec.ImageConfig{Env: []string{defaultPathEnv}}, opts.Changes)
	if err != nil {
		return LoadedImage{}, err
	}
	ctx, release, err := c.withLease(ctx)
	if err != nil {
		return LoadedImage{}, fmt.Errorf("import %s: %w", name, err)
	}
	defer func() { release(retErr != nil) }()
	manifest, err := c.writeImportedImage(ctx, r, cfg, opts)
	if err != nil {
		return LoadedImage{}, fmt.Errorf("import %s: %w", name, err)
	}
	if err := c.createUnpacked(ctx, images.Image{Name: name, Target: manifest}); err != nil {
		return LoadedImage{}, fmt.Errorf("import %s: %w", name, err)
	}
	return LoadedImage{Name: name, Digest: manifest.Digest.String()}, nil
}

// createUnpacked creates (or repoints) the image record and unpacks it,
// restoring what was there before when unpacking fails.
func (c *Client) createUnpacked(ctx context.Context, img images.Image) error {
	prev, prevErr := c.ctr.ImageService().Get(ctx, img.Name)
	if err := c.putImage(ctx, img); err != nil {
		return err
	}
	if _, _, err := c.ensureUnpacked(ctx, img); err != nil {
		if prevErr == nil {
			_ = c.putImage(context.WithoutCancel(ctx), prev)
		} else {
			c.forgetImage(ctx, img.Name)
		}
		return err
	}
	return nil
}

func (c *Client) writeImportedImage(ctx context.Context, r io.Reader, cfg ocispec.ImageConfig, opts ImportOptions) (ocispec.Descriptor, error) {
	cs := c.ctr.ContentStore()
	layer, diffID, err := writeLayer(ctx, cs, r)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	config, err := writeBlobJSON(ctx, cs, ocispec.MediaTypeImageConfig, importedConfig(cfg, diffID, opts), nil)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write image config: %w", err)
	}
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispec.Descriptor{layer},
	}
	// The GC labels keep config and layer alive as long as the manifest is.
	labels := map[string]string{
		"containerd.io/gc.ref.content.config": config.Digest.String(),
		"containerd.io/gc.ref.content.l.0":    layer.Digest.String(),
	}
	desc, err := writeBlobJSON(ctx, cs, ocispec.MediaTypeImageManifest, manifest, labels)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write image manifest: %w", err)
	}
	desc.Platform = &ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	return desc, nil
}

func importedConfig(cfg ocispec.ImageConfig, diffID digest.Digest, opts ImportOptions) ocispec.Image {
	now := time.Now().UTC()
	comment := opts.Message
	if comment == "" && opts.Source != "" {
		comment = "Imported from " + opts.Source
	}
	return ocispec.Image{
		Created:  &now,
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History:  []ocispec.History{{Created: &now, CreatedBy: "stack image import", Comment: comment}},
	}
}

func writeBlobJSON(ctx context.Context, cs content.Store, mediaType string, v any, labels map[string]string) (ocispec.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	err = content.WriteBlob(ctx, cs, "stack-import-"+desc.Digest.String(), bytes.NewReader(data), desc, content.WithLabels(labels))
	return desc, err
}

// writeLayer copies the tarball, entry by entry, into a gzip layer blob,
// rejecting entries that leave the layer. It returns the blob's descriptor
// and the digest of the uncompressed tar (the diffID).
func writeLayer(ctx context.Context, cs content.Store, r io.Reader) (_ ocispec.Descriptor, _ digest.Digest, retErr error) {
	stream, err := compression.DecompressStream(bufio.NewReader(r))
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("read root filesystem tarball: %w", err)
	}
	defer stream.Close()
	ref := "stack-import-layer-" + randomHex()
	w, err := cs.Writer(ctx, content.WithRef(ref))
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("write layer: %w", err)
	}
	defer func() {
		w.Close()
		if retErr != nil {
			_ = cs.Abort(context.WithoutCancel(ctx), ref)
		}
	}()
	diff := digest.SHA256.Digester()
	gz := gzip.NewWriter(w)
	if err := copyLayer(tar.NewReader(stream), tar.NewWriter(io.MultiWriter(gz, diff.Hash()))); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := gz.Close(); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("write layer: %w", err)
	}
	size, dgst := writtenSize(ctx, w), w.Digest()
	// An existing blob is fine: the commit still puts it under our lease.
	if err := w.Commit(ctx, 0, ""); err != nil && !errdefs.IsAlreadyExists(err) {
		return ocispec.Descriptor{}, "", fmt.Errorf("write layer: %w", err)
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: dgst, Size: size}, diff.Digest(), nil
}

func writtenSize(ctx context.Context, w content.Writer) int64 {
	st, err := w.Status()
	if err != nil {
		return 0
	}
	return st.Offset
}

// copyLayer re-writes each entry after checking it stays in the layer.
func copyLayer(tr *tar.Reader, tw *tar.Writer) error {
	entries := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return tarError(entries, err)
		}
		if err := checkEntry(hdr); err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("tar entry %q: %w", hdr.Name, tarError(entries, err))
		}
		entries++
	}
	if entries == 0 {
		return errors.New("the tarball holds no files (expected a root filesystem: tar -C rootfs -cf rootfs.tar .)")
	}
	return tw.Close()
}

func tarError(entries int, err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("the tarball is truncated after %d entries: %w", entries, err)
	case entries == 0:
		return fmt.Errorf("not a tar archive (plain or gzip): %w", err)
	}
	return fmt.Errorf("the tarball is corrupt after %d entries: %w", entries, err)
}

// checkEntry rejects absolute paths and paths that climb out with "..",
// for the entry itself and for a hard link's target.
func checkEntry(hdr *tar.Header) error {
	if escapes(hdr.Name) {
		return fmt.Errorf("tar entry %q: %w (use paths relative to the root, e.g. tar -C rootfs -cf rootfs.tar .)", hdr.Name, ErrLayerEscape)
	}
	if hdr.Typeflag == tar.TypeLink && escapes(hdr.Linkname) {
		return fmt.Errorf("tar entry %q: hard link target %q: %w", hdr.Name, hdr.Linkname, ErrLayerEscape)
	}
	return nil
}

func escapes(name string) bool {
	if path.IsAbs(name) {
		return true
	}
	clean := path.Clean(name)
	return clean == ".." || strings.HasPrefix(clean, "../")
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
