package ctrd

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func dirFlags(t *testing.T, dir string) (uint32, error) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
}

func TestContainerDirectoriesAreSpreadAcrossBlockGroups(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	if _, err := dirFlags(t, c.opts.StateDir); err != nil {
		t.Skipf("the test directory's filesystem has no inode flags: %v", err)
	}
	id := newID()
	if err := c.makeContainerDir(id); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(c.containerDir(id)); err != nil || !st.IsDir() {
		t.Fatalf("container directory not made: %v", err)
	}
	flags, err := dirFlags(t, c.stateDir(dirContainers))
	if err != nil {
		t.Fatal(err)
	}
	if flags&fsTopDirFlag == 0 {
		t.Skipf("the filesystem ignores the top-directory flag (flags %#x)", flags)
	}
	// A second client (the next command) leaves the flag as it is.
	again := &Client{opts: c.opts}
	if err := again.makeContainerDir(newID()); err != nil {
		t.Fatal(err)
	}
	if flags2, err := dirFlags(t, c.stateDir(dirContainers)); err != nil || flags2 != flags {
		t.Errorf("flags after a second client: %#x (%v), want %#x", flags2, err, flags)
	}
}
