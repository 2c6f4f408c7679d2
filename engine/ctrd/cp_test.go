package ctrd

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeContainer is a directory standing in for a container's root.
func cpFakeContainer(t *testing.T) (string, *cpRoot) {
	t.Helper()
	dir := t.TempDir()
	root, err := openCpRoot(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return dir, root
}

func cpHostRoot(t *testing.T) *cpRoot {
	t.Helper()
	root, err := openCpRoot("/", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

func cpWrite(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func cpRead(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestCopyOutADirectoryKeepsModesTimesAndLinks(t *testing.T) {
	ctrDir, ctr := cpFakeContainer(t)
	cpWrite(t, ctrDir+"/app/bin/run", "#!/bin/sh\n", 0o750)
	cpWrite(t, ctrDir+"/app/data.txt", "data", 0o640)
	os.Symlink("bin/run", ctrDir+"/app/start")
	os.Link(ctrDir+"/app/data.txt", ctrDir+"/app/same.txt")
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(ctrDir+"/app/data.txt", old, old)
	os.Chown(ctrDir+"/app/data.txt", 1234, 5678)
	out := t.TempDir()

	src := copySide{root: ctr, path: "/app", where: "container c"}
	dst := copySide{root: cpHostRoot(t), path: out + "/copy", where: "the host"}
	if err := copyBetween(src, dst, false, nil); err != nil {
		t.Fatal(err)
	}
	if got := cpRead(t, out+"/copy/bin/run"); got != "#!/bin/sh\n" {
		t.Errorf("run = %q", got)
	}
	st, _ := os.Stat(out + "/copy/data.txt")
	if st.Mode().Perm() != 0o640 || !st.ModTime().Equal(old) {
		t.Errorf("data.txt: mode %v mtime %v, want 0640 %v", st.Mode(), st.ModTime(), old)
	}
	if uid, gid := cpOwner(st); uid != 1234 || gid != 5678 {
		t.Errorf("with -a data.txt belongs to %d:%d, want 1234:5678", uid, gid)
	}
	if link, _ := os.Readlink(out + "/copy/start"); link != "bin/run" {
		t.Errorf("start -> %q, want the symlink itself", link)
	}
	same, _ := os.Stat(out + "/copy/same.txt")
	if !os.SameFile(st, same) {
		t.Error("same.txt is not a hard link of data.txt any more")
	}
}

func TestCopyInWithoutArchiveGivesTheFilesToTheOwnerAsked(t *testing.T) {
	ctrDir, ctr := cpFakeContainer(t)
	os.Mkdir(ctrDir+"/srv", 0o755)
	hostDir := t.TempDir()
	cpWrite(t, hostDir+"/conf/a.conf", "a", 0o600)
	os.Chown(hostDir+"/conf/a.conf", 1000, 1000)

	src := copySide{root: cpHostRoot(t), path: hostDir + "/conf/.", where: "the host"}
	dst := copySide{root: ctr, path: "/srv", where: "container c"}
	if err := copyBetween(src, dst, false, &[2]int{0, 0}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(ctrDir + "/srv/a.conf") // "conf/." merges the content
	if err != nil {
		t.Fatal(err)
	}
	if uid, gid := cpOwner(st); uid != 0 || gid != 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("a.conf: %d:%d %v, want 0:0 0600", uid, gid, st.Mode())
	}
}

// A symlink in the container to an absolute host path is read as the
// container's file, never the host's.
func TestCopyOutResolvesSymlinksInsideTheContainer(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "host-secret")
	cpWrite(t, secret, "HOST SECRET", 0o600)
	ctrDir, ctr := cpFakeContainer(t)
	os.Symlink(secret, ctrDir+"/abs")                        // absolute, host path
	os.Symlink("../../../../../../.."+secret, ctrDir+"/rel") // climbing out
	os.MkdirAll(ctrDir+"/d", 0o755)
	os.Symlink("/", ctrDir+"/d/up")
	cpWrite(t, ctrDir+secret, "container's own file", 0o644)
	out := t.TempDir()

	for _, p := range []string{"/abs", "/rel", "/d/up" + secret} {
		dst := copySide{root: cpHostRoot(t), path: out + "/got", where: "the host"}
		os.Remove(out + "/got")
		if err := copyBetween(copySide{root: ctr, path: p, where: "c"}, dst, true, nil); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if got := cpRead(t, out+"/got"); got != "container's own file" {
			t.Errorf("cp -L c:%s read %q, want the container's file", p, got)
		}
	}
	// With nothing at that path in the container, it is not found: the
	// host's file does not stand in.
	os.Remove(ctrDir + secret)
	err := copyBetween(copySide{root: ctr, path: "/abs", where: "container c"}, copySide{root: cpHostRoot(t), path: out + "/none"}, true, nil)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "container c") {
		t.Errorf("dangling link: %v, want not found in container c", err)
	}
}

// Writing through a symlink of the container stays inside it too.
func TestCopyInThroughASymlinkStaysInTheContainer(t *testing.T) {
	outside := t.TempDir()
	ctrDir, ctr := cpFakeContainer(t)
	os.Symlink(outside, ctrDir+"/escape")
	hostDir := t.TempDir()
	cpWrite(t, hostDir+"/f", "x", 0o644)

	src := copySide{root: cpHostRoot(t), path: hostDir + "/f"}
	if err := copyBetween(src, copySide{root: ctr, path: "/escape/f"}, false, nil); err == nil {
		// The link's target does not exist inside the container: its
		// parent is missing, so nothing may have been written.
		t.Error("copy through a dangling in-container link succeeded")
	}
	os.MkdirAll(ctrDir+outside, 0o755)
	if err := copyBetween(src, copySide{root: ctr, path: "/escape/f"}, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(outside + "/f"); err == nil {
		t.Fatal("the copy landed on the host")
	}
	if cpRead(t, ctrDir+outside+"/f") != "x" {
		t.Error("the copy is not in the container's directory")
	}
}

func TestExtractRejectsEntriesLeavingTheDestination(t *testing.T) {
	_, ctr := cpFakeContainer(t)
	for _, name := range []string{"../evil", "a/../../evil", "/abs"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
		tw.Write([]byte("x"))
		tw.Close()
		sink := &cpTarSink{root: ctr, dir: "/"}
		if err := sink.extract(&buf); !errors.Is(err, ErrCopyBreakout) {
			t.Errorf("entry %q: %v, want ErrCopyBreakout", name, err)
		}
	}
}

func TestCopyRefusesADirectoryOverAFileAndTheReverse(t *testing.T) {
	ctrDir, ctr := cpFakeContainer(t)
	cpWrite(t, ctrDir+"/f", "file", 0o644)
	os.MkdirAll(ctrDir+"/d/sub", 0o755)
	hostDir := t.TempDir()
	os.MkdirAll(hostDir+"/sub", 0o755)
	cpWrite(t, hostDir+"/file", "x", 0o644)

	err := copyBetween(copySide{root: cpHostRoot(t), path: hostDir}, copySide{root: ctr, path: "/f"}, false, nil)
	if !errors.Is(err, ErrCopyDirToFile) {
		t.Errorf("dir onto file: %v", err)
	}
	// d/sub is a directory: a file named sub may not replace it.
	cpWrite(t, hostDir+"/x/sub", "x", 0o644)
	err = copyBetween(copySide{root: cpHostRoot(t), path: hostDir + "/x/."}, copySide{root: ctr, path: "/d"}, false, nil)
	if err == nil || !strings.Contains(err.Error(), "cannot overwrite directory") {
		t.Errorf("file over dir: %v", err)
	}
}

func TestArchiveStreamNamesEntriesFromTheSourceBase(t *testing.T) {
	ctrDir, ctr := cpFakeContainer(t)
	cpWrite(t, ctrDir+"/www/index.html", "hi", 0o644)
	var buf bytes.Buffer
	if err := cpWriteTar(&buf, ctr, "/www", cpSourceName("/www"), false); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	if strings.Join(names, " ") != "www/ www/index.html" {
		t.Errorf("entries %q", names)
	}
}

func cpOwner(st os.FileInfo) (int, int) {
	sys := st.Sys().(*syscall.Stat_t)
	return int(sys.Uid), int(sys.Gid)
}

// A destination that is a symlink is written through, as docker cp does,
// to the link's target inside the container.
func TestCopyInWritesThroughADestinationSymlinkInsideTheContainer(t *testing.T) {
	hostDir := t.TempDir()
	cpWrite(t, hostDir+"/victim", "host's own\n", 0o644)
	ctrDir, ctr := cpFakeContainer(t)
	os.MkdirAll(ctrDir+hostDir, 0o755)
	os.Symlink(hostDir+"/victim", ctrDir+"/link")
	src := t.TempDir()
	cpWrite(t, src+"/new", "new content\n", 0o644)

	if err := copyBetween(copySide{root: cpHostRoot(t), path: src + "/new"}, copySide{root: ctr, path: "/link"}, false, nil); err != nil {
		t.Fatal(err)
	}
	if got := cpRead(t, hostDir+"/victim"); got != "host's own\n" {
		t.Fatalf("the host's file was written: %q", got)
	}
	if got := cpRead(t, ctrDir+hostDir+"/victim"); got != "new content\n" {
		t.Errorf("the link's target in the container = %q", got)
	}
	if target, _ := os.Readlink(ctrDir + "/link"); target != hostDir+"/victim" {
		t.Errorf("the link was replaced: %q", target)
	}
}

// Kernel filesystems mounted in a running container (/proc, /sys) are
// archived as empty directories, as docker cp sees the container.
func TestArchiveLeavesOutTheContentOfProc(t *testing.T) {
	host := cpHostRoot(t)
	var buf bytes.Buffer
	if err := cpWriteTar(&buf, host, "/proc", "proc", false); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "proc/" {
		t.Fatalf("first entry %v, %v", hdr, err)
	}
	if hdr, err := tr.Next(); err != io.EOF {
		t.Errorf("an entry below /proc: %v %v", hdr, err)
	}
}
