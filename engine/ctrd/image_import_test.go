package ctrd

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLayerEntriesMustStayInsideTheRootFilesystem(t *testing.T) {
	for name, escapes := range map[string]bool{
		"etc/passwd":        false,
		"./etc/passwd":      false,
		"a/../b":            false,
		"a/b/../../c":       false,
		"..foo/bar":         false,
		"../etc/passwd":     true,
		"..":                true,
		"a/../../b":         true,
		"/etc/passwd":       true,
		"/":                 true,
		"./../../root/.ssh": true,
	} {
		err := checkEntry(&tar.Header{Name: name, Typeflag: tar.TypeReg})
		if got := errors.Is(err, ErrLayerEscape); got != escapes {
			t.Errorf("entry %q: escape = %v, want %v (%v)", name, got, escapes, err)
		}
	}
	err := checkEntry(&tar.Header{Name: "bin/x", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"})
	if !errors.Is(err, ErrLayerEscape) || !strings.Contains(err.Error(), `tar entry "bin/x": hard link target "/etc/shadow"`) {
		t.Errorf("hard link to an absolute path: %v", err)
	}
	if err := checkEntry(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "/bin/busybox"}); err != nil {
		t.Errorf("an absolute symlink target resolves inside the container: %v", err)
	}
}

func TestCopyLayerKeepsEntriesAndStopsAtTheFirstEscape(t *testing.T) {
	in := tarOf(t, "bin/a", "etc/b")
	var out bytes.Buffer
	if err := copyLayer(tar.NewReader(bytes.NewReader(in)), tar.NewWriter(&out)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, out.Bytes()) {
		t.Fatal("a clean tarball is not copied byte for byte")
	}
	err := copyLayer(tar.NewReader(bytes.NewReader(tarOf(t, "bin/a", "../x", "etc/b"))), tar.NewWriter(io.Discard))
	if err == nil || err.Error() != `tar entry "../x": path leaves the root filesystem (use paths relative to the root, e.g. tar -C rootfs -cf rootfs.tar .)` {
		t.Fatalf("got %v", err)
	}
	err = copyLayer(tar.NewReader(bytes.NewReader(tarOf(t))), tar.NewWriter(io.Discard))
	if err == nil || !strings.HasPrefix(err.Error(), "the tarball holds no files") {
		t.Fatalf("empty tarball: %v", err)
	}
}

func tarOf(t *testing.T, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("x"))
	}
	tw.Close()
	return buf.Bytes()
}
