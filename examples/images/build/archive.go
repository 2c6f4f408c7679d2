package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// created is every image's creation time: pinned, so digests are stable.
var created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// annotationImageName is the annotation containerd's Import names the image by.
const annotationImageName = "io.containerd.image.name"

// image is what goes into one archive.
type image struct {
	name    string // full reference, e.g. docker.io/library/busybox:latest
	tag     string // org.opencontainers.image.ref.name, e.g. latest
	config  ocispec.ImageConfig
	layers  []layer
	history []ocispec.History
}

// blob is one content-addressed file of the archive.
type blob struct {
	desc ocispec.Descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) blob {
	return blob{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, data: data}
}

func jsonBlob(mediaType string, v any) (blob, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return blob{}, fmt.Errorf("encode %s: %w", mediaType, err)
	}
	return newBlob(mediaType, data), nil
}

// hostPlatform is the platform the images are for: the builder's own, which
// is also the one the host's busybox was built for.
func hostPlatform() ocispec.Platform {
	return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// configBlob is the image config: runtime settings plus the layers' diffIDs.
func (img image) configBlob() (blob, error) {
	diffIDs := make([]digest.Digest, len(img.layers))
	for i, l := range img.layers {
		diffIDs[i] = l.diffID
	}
	cfg := ocispec.Image{
		Created:  &created,
		Platform: hostPlatform(),
		Config:   img.config,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		History:  img.history,
	}
	return jsonBlob(ocispec.MediaTypeImageConfig, cfg)
}

// blobs returns the config, the layers and the manifest, manifest last.
func (img image) blobs() ([]blob, error) {
	cfg, err := img.configBlob()
	if err != nil {
		return nil, err
	}
	out := []blob{cfg}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg.desc}
	m.SchemaVersion = 2
	for _, l := range img.layers {
		b := blob{desc: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: l.digest, Size: int64(len(l.blob))}, data: l.blob}
		m.Layers = append(m.Layers, b.desc)
		out = append(out, b)
	}
	manifest, err := jsonBlob(ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return nil, err
	}
	return append(out, manifest), nil
}

// index is the archive's index.json: one manifest, named for containerd and
// for OCI tools.
func (img image) index(manifest ocispec.Descriptor) ocispec.Index {
	platform := hostPlatform()
	manifest.Platform = &platform
	manifest.Annotations = map[string]string{
		annotationImageName:       img.name,
		ocispec.AnnotationRefName: img.tag,
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{manifest}}
	idx.SchemaVersion = 2
	return idx
}

// writeArchive writes img as an OCI image layout in a tar stream and returns
// the manifest's descriptor.
func writeArchive(w io.Writer, img image) (ocispec.Descriptor, error) {
	blobs, err := img.blobs()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	manifest := blobs[len(blobs)-1].desc
	index, err := json.Marshal(img.index(manifest))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encode index.json: %w", err)
	}
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encode oci-layout: %w", err)
	}
	entries := []entry{file(ocispec.ImageLayoutFile, 0o644, layout), dir("blobs", 0o755), dir("blobs/sha256", 0o755)}
	seen := map[digest.Digest]bool{}
	for _, b := range blobs {
		if !seen[b.desc.Digest] {
			seen[b.desc.Digest] = true
			entries = append(entries, file("blobs/sha256/"+b.desc.Digest.Encoded(), 0o644, b.data))
		}
	}
	entries = append(entries, file(ocispec.ImageIndexFile, 0o644, index))
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := writeEntry(tw, e); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("close archive: %w", err)
	}
	return manifest, nil
}

// writeArchiveFile writes the archive next to path and renames it into
// place, so an interrupted build never leaves half an archive behind.
func writeArchiveFile(path string, img image) (ocispec.Descriptor, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	desc, err := writeArchive(tmp, img)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write %s: %w", tmp.Name(), cerr)
	}
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write %s: %w", path, err)
	}
	return desc, nil
}
