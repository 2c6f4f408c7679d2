package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeBusybox stands in for the host's binary where only the layout matters.
var fakeBusybox = busybox{binary: []byte("#!busybox"), applets: []string{"wget", "sh", "busybox", "nslookup", "ls"}}

// testImages builds both images from fake inputs, as buildImages does from real ones.
func testImages(t *testing.T) (busyboxImg, helloImg image) {
	t.Helper()
	base, err := buildLayer(fakeBusybox.rootfs())
	if err != nil {
		t.Fatal(err)
	}
	hello, err := helloLayer([]byte("hello-binary"))
	if err != nil {
		t.Fatal(err)
	}
	return busyboxImage(base), helloImage(base, hello)
}

// archive is an OCI archive read back: its files by name, in order.
type archive struct {
	names []string
	files map[string][]byte
}

func readTar(t *testing.T, r io.Reader) archive {
	t.Helper()
	a := archive{files: map[string][]byte{}}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return a
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		a.names = append(a.names, hdr.Name)
		a.files[hdr.Name] = data
	}
}

func writeTestArchive(t *testing.T, img image) (archive, ocispec.Descriptor) {
	t.Helper()
	var buf bytes.Buffer
	desc, err := writeArchive(&buf, img)
	if err != nil {
		t.Fatal(err)
	}
	return readTar(t, &buf), desc
}

func (a archive) blob(t *testing.T, d digest.Digest) []byte {
	t.Helper()
	data, ok := a.files["blobs/sha256/"+d.Encoded()]
	if !ok {
		t.Fatalf("archive has no blob %s", d)
	}
	if got := digest.FromBytes(data); got != d {
		t.Fatalf("blob %s holds content with digest %s", d, got)
	}
	return data
}

func (a archive) decode(t *testing.T, name string, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestArchiveIsAnOCILayoutWithANamedManifest(t *testing.T) {
	_, img := testImages(t)
	a, desc := writeTestArchive(t, img)

	if got := string(a.files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", got)
	}
	var idx ocispec.Index
	a.decode(t, "index.json", a.files["index.json"], &idx)
	if idx.SchemaVersion != 2 || idx.MediaType != ocispec.MediaTypeImageIndex || len(idx.Manifests) != 1 {
		t.Fatalf("index.json = %+v, want one manifest in a schema 2 OCI index", idx)
	}
	m := idx.Manifests[0]
	if m.Digest != desc.Digest || m.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("index manifest = %s %s, want %s", m.MediaType, m.Digest, desc.Digest)
	}
	if got := m.Annotations["io.containerd.image.name"]; got != "docker.io/library/hello:latest" {
		t.Errorf("io.containerd.image.name = %q", got)
	}
	if got := m.Annotations["org.opencontainers.image.ref.name"]; got != "latest" {
		t.Errorf("org.opencontainers.image.ref.name = %q", got)
	}
	if m.Platform == nil || m.Platform.OS != "linux" || m.Platform.Architecture != hostPlatform().Architecture {
		t.Errorf("manifest platform = %+v, want linux/%s", m.Platform, hostPlatform().Architecture)
	}
}

func TestArchiveHoldsEveryBlobTheManifestNames(t *testing.T) {
	_, img := testImages(t)
	a, desc := writeTestArchive(t, img)

	var m ocispec.Manifest
	a.decode(t, "manifest", a.blob(t, desc.Digest), &m)
	var cfg ocispec.Image
	a.decode(t, "config", a.blob(t, m.Config.Digest), &cfg)
	if len(m.Layers) != 2 || len(cfg.RootFS.DiffIDs) != 2 {
		t.Fatalf("hello has %d layers and %d diffIDs, want 2 and 2", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	for i, l := range m.Layers {
		if l.MediaType != ocispec.MediaTypeImageLayerGzip {
			t.Errorf("layer %d media type %s", i, l.MediaType)
		}
		raw := gunzip(t, a.blob(t, l.Digest))
		if got := digest.FromBytes(raw); got != cfg.RootFS.DiffIDs[i] {
			t.Errorf("layer %d uncompressed digest %s, config diffID %s", i, got, cfg.RootFS.DiffIDs[i])
		}
	}
	// oci-layout, two directories, config, two layers, manifest, index.json.
	if len(a.names) != 8 || a.names[0] != "oci-layout" || a.names[7] != "index.json" {
		t.Errorf("archive entries = %v", a.names)
	}
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestConfigsSayHowTheImagesRun(t *testing.T) {
	bb, hello := testImages(t)
	for _, tc := range []struct {
		img     image
		cmd     []string
		exposed []string
	}{
		{bb, []string{"sh"}, nil},
		{hello, []string{"/hello"}, []string{"8080/tcp"}},
	} {
		a, desc := writeTestArchive(t, tc.img)
		var m ocispec.Manifest
		a.decode(t, "manifest", a.blob(t, desc.Digest), &m)
		var cfg ocispec.Image
		a.decode(t, "config", a.blob(t, m.Config.Digest), &cfg)
		if !slices.Equal(cfg.Config.Cmd, tc.cmd) || !slices.Equal(cfg.Config.Env, []string{defaultPath}) {
			t.Errorf("%s: Cmd %q Env %q", tc.img.name, cfg.Config.Cmd, cfg.Config.Env)
		}
		if got := slices.Sorted(mapKeys(cfg.Config.ExposedPorts)); !slices.Equal(got, tc.exposed) {
			t.Errorf("%s: ExposedPorts %v, want %v", tc.img.name, got, tc.exposed)
		}
		if cfg.Created == nil || !cfg.Created.Equal(created) {
			t.Errorf("%s: Created %v, want the pinned %v", tc.img.name, cfg.Created, created)
		}
	}
}

func mapKeys(m map[string]struct{}) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestBusyboxLayerHasAppletLinksAndASmallSystem(t *testing.T) {
	l, err := buildLayer(fakeBusybox.rootfs())
	if err != nil {
		t.Fatal(err)
	}
	hdrs := layerHeaders(t, l)
	for _, a := range []string{"sh", "wget", "nslookup", "ls"} {
		h, ok := hdrs["bin/"+a]
		if !ok || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s = %+v, want a symlink to busybox", a, h)
		}
	}
	if h := hdrs["bin/busybox"]; h == nil || h.Typeflag != tar.TypeReg || h.Mode != 0o755 {
		t.Errorf("bin/busybox = %+v, want a 0755 regular file", h)
	}
	if h := hdrs["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("tmp/ = %+v, want mode 1777", h)
	}
	if h := hdrs["home/user/"]; h == nil || h.Uid != 1000 || h.Gid != 1000 {
		t.Errorf("home/user/ = %+v, want owned by 1000:1000", h)
	}
	for _, f := range []string{"etc/passwd", "etc/group", "etc/nsswitch.conf", "etc/hosts"} {
		if hdrs[f] == nil {
			t.Errorf("layer has no %s", f)
		}
	}
	for name, h := range hdrs {
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s mtime %v, want %v", name, h.ModTime, epoch)
		}
	}
}

func layerHeaders(t *testing.T, l layer) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(gunzip(t, l.blob)))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

func TestEtcFilesNameRootNobodyAndUser1000(t *testing.T) {
	for _, want := range []string{"root:x:0:0:", "nobody:x:65534:65534:", "user:x:1000:1000:"} {
		if !bytes.Contains(passwd, []byte(want)) {
			t.Errorf("/etc/passwd lacks %q", want)
		}
	}
	for _, want := range []string{"root:x:0:", "nobody:x:65534:", "user:x:1000:"} {
		if !bytes.Contains(group, []byte(want)) {
			t.Errorf("/etc/group lacks %q", want)
		}
	}
	if string(nsswitch) != "hosts: files dns\n" {
		t.Errorf("/etc/nsswitch.conf = %q", nsswitch)
	}
}

func TestSameInputsGiveTheSameDigests(t *testing.T) {
	_, first := testImages(t)
	_, second := testImages(t)
	var a, b bytes.Buffer
	da, err := writeArchive(&a, first)
	if err != nil {
		t.Fatal(err)
	}
	db, err := writeArchive(&b, second)
	if err != nil {
		t.Fatal(err)
	}
	if da.Digest != db.Digest || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("two builds differ: %s vs %s", da.Digest, db.Digest)
	}
}

func TestABusyboxThatIsNotAStaticExecutableIsRefused(t *testing.T) {
	script := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		script:          "(apt-get install busybox-static)",
		"/bin/ls":       "is dynamically linked; the image needs a static one (apt-get install busybox-static)",
		"/nonexistent/": "(apt-get install busybox-static)",
	} {
		_, err := readBusybox(context.Background(), path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("readBusybox(%s) = %v, want an error containing %q", path, err, want)
		}
	}
}

// hostBusybox returns the host's busybox-static, or skips when it is not
// installed (make test installs it; CI must not skip).
func hostBusybox(t *testing.T) string {
	t.Helper()
	const path = "/bin/busybox"
	if err := checkStatic(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no static busybox: %v", err)
		}
		t.Skipf("no static busybox: %v", err)
	}
	return path
}

func TestRealBuildIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hello binary")
	}
	bbPath := hostBusybox(t)
	ctx := context.Background()
	dirs := []string{t.TempDir(), t.TempDir()}
	var out [2]bytes.Buffer
	for i, d := range dirs {
		if err := run(ctx, d, bbPath, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"busybox.oci.tar", "hello.oci.tar"} {
		a, err := os.ReadFile(filepath.Join(dirs[0], name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dirs[1], name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds", name)
		}
	}
	t.Logf("\n%s", out[0].String())
}

func TestRealBusyboxHasItsAppletsLinked(t *testing.T) {
	bb, err := readBusybox(context.Background(), hostBusybox(t))
	if err != nil {
		t.Fatal(err)
	}
	l, err := buildLayer(bb.rootfs())
	if err != nil {
		t.Fatal(err)
	}
	hdrs := layerHeaders(t, l)
	links := 0
	for _, a := range bb.applets {
		if h := hdrs["bin/"+a]; h != nil && h.Typeflag == tar.TypeSymlink {
			links++
		}
	}
	// Every applet but "busybox" itself is a link.
	if links < 100 || links < len(bb.applets)-1 {
		t.Errorf("%d of %d applets linked", links, len(bb.applets))
	}
}
