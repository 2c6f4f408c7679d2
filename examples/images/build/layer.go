package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // go-digest needs it registered
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
)

// epoch is every tar entry's modification time, so that layers are
// byte-for-byte reproducible.
var epoch = time.Unix(0, 0).UTC()

// entry is one file, directory or symlink of a layer.
type entry struct {
	name     string // relative, no leading slash; directories without a trailing slash
	typ      byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode     int64
	uid, gid int
	linkname string // for symlinks
	data     []byte // for regular files
}

func dir(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }

func file(name string, mode int64, data []byte) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, data: data}
}

func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, linkname: target}
}

// layer is a gzip-compressed layer blob with its two digests: diffID names
// the uncompressed tar (the image config lists it), digest the blob.
type layer struct {
	blob   []byte
	diffID digest.Digest
	digest digest.Digest
}

// buildLayer writes entries, in order, into a reproducible layer.
func buildLayer(entries []entry) (layer, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		if err := writeEntry(tw, e); err != nil {
			return layer{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return layer{}, fmt.Errorf("close layer tar: %w", err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz) // no name, no mtime in the header: reproducible
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return layer{}, fmt.Errorf("compress layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return layer{}, fmt.Errorf("compress layer: %w", err)
	}
	return layer{blob: gz.Bytes(), diffID: digest.FromBytes(raw.Bytes()), digest: digest.FromBytes(gz.Bytes())}, nil
}

func writeEntry(tw *tar.Writer, e entry) error {
	hdr := &tar.Header{
		Typeflag: e.typ,
		Name:     e.name,
		Linkname: e.linkname,
		Mode:     e.mode,
		Uid:      e.uid,
		Gid:      e.gid,
		Size:     int64(len(e.data)),
		ModTime:  epoch,
	}
	if e.typ == tar.TypeDir {
		hdr.Name += "/"
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("layer entry %s: %w", e.name, err)
	}
	if _, err := tw.Write(e.data); err != nil {
		return fmt.Errorf("layer entry %s: %w", e.name, err)
	}
	return nil
}
