package ctrd

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"

	"golang.org/x/sys/unix"
)

// cpTarSink extracts a tar stream into a directory of a root. Each entry's
// parent is resolved inside the root (RESOLVE_IN_ROOT) and the entry is
// created relative to that parent with O_NOFOLLOW/O_EXCL; metadata is then
// set through an fd of the new object, so nothing lands outside the root
// whatever the archive's names or the symlinks already there.
type cpTarSink struct {
	root *cpRoot
	dir  string // extraction directory, inside root
	// owner, when set, replaces the archive's uid:gid (docker cp without -a).
	owner *[2]int
	dirs  []cpDirTime
}

type cpDirTime struct {
	path  string
	mtime unix.Timespec
}

// ErrCopyBreakout is an archive entry naming a path outside the destination.
var ErrCopyBreakout = errors.New("archive entry leaves the destination directory")

func (s *cpTarSink) extract(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if err := s.entry(hdr, tr); err != nil {
			return err
		}
	}
	// Directory times last: writing their content changed them.
	for _, d := range slices.Backward(s.dirs) {
		fd, err := s.root.open(d.path, unix.O_PATH|unix.O_DIRECTORY, false)
		if err != nil {
			continue
		}
		unix.UtimesNanoAt(unix.AT_FDCWD, procFdPath(fd), []unix.Timespec{d.mtime, d.mtime}, 0)
		unix.Close(fd)
	}
	return nil
}

func (s *cpTarSink) entry(hdr *tar.Header, content io.Reader) error {
	name := path.Clean(hdr.Name)
	if path.IsAbs(name) || name == ".." || len(name) > 2 && name[:3] == "../" {
		return fmt.Errorf("%w: %s", ErrCopyBreakout, hdr.Name)
	}
	target := path.Join(s.dir, name)
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("archive entry %q: not a directory", hdr.Name)
		}
		return nil // the destination itself: it exists, leave it be
	}
	uid, gid := hdr.Uid, hdr.Gid
	if s.owner != nil {
		uid, gid = s.owner[0], s.owner[1]
	}
	parent, base := path.Split(target)
	pfd, err := s.root.mkdirAll(parent, uid, gid)
	if err != nil {
		return &cpPathError{op: "create directory", path: parent, err: err}
	}
	defer unix.Close(pfd)
	if err := s.replace(pfd, base, target, hdr.Typeflag == tar.TypeDir); err != nil {
		return err
	}
	if err := s.create(pfd, base, target, hdr, content); err != nil {
		return err
	}
	return s.setMeta(pfd, base, target, hdr, uid, gid)
}

// replace clears the way for the entry: an existing non-directory goes; a
// directory stays for a directory entry and is an error for anything else.
func (s *cpTarSink) replace(pfd int, base, target string, entryIsDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.ENOENT {
		return nil
	} else if err != nil {
		return &cpPathError{op: "stat", path: target, err: err}
	}
	switch {
	case cpIsDir(st) && entryIsDir:
		return nil
	case cpIsDir(st):
		return fmt.Errorf("cannot overwrite directory %s with a non-directory", target)
	case entryIsDir:
		return fmt.Errorf("cannot overwrite non-directory %s with a directory", target)
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil {
		return &cpPathError{op: "remove", path: target, err: err}
	}
	return nil
}

func (s *cpTarSink) create(pfd int, base, target string, hdr *tar.Header, content io.Reader) error {
	mode := uint32(hdr.Mode & 0o7777)
	var err error
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = unix.Mkdirat(pfd, base, 0o700)
		if err == unix.EEXIST {
			err = nil
		}
	case tar.TypeReg, tar.TypeRegA:
		err = cpWriteFileAt(pfd, base, content)
	case tar.TypeSymlink:
		err = unix.Symlinkat(hdr.Linkname, pfd, base)
	case tar.TypeLink:
		err = s.link(pfd, base, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		err = unix.Mknodat(pfd, base, kind|mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
	default:
		return nil // pax globals, GNU extensions: nothing to create
	}
	if err != nil {
		return &cpPathError{op: "create", path: target, err: err}
	}
	return nil
}

func cpWriteFileAt(pfd int, base string, content io.Reader) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	_, err = io.Copy(f, content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// link makes a hard link to an entry extracted before; the archive names
// it relative to the destination directory.
func (s *cpTarSink) link(pfd int, base, linkname string) error {
	old := path.Clean(linkname)
	if path.IsAbs(old) || old == ".." || len(old) > 2 && old[:3] == "../" {
		return fmt.Errorf("%w: hard link to %s", ErrCopyBreakout, linkname)
	}
	oldParent, oldBase := path.Split(path.Join(s.dir, old))
	ofd, err := s.root.open(oldParent, unix.O_PATH|unix.O_DIRECTORY, true)
	if err != nil {
		return err
	}
	defer unix.Close(ofd)
	return unix.Linkat(ofd, oldBase, pfd, base, 0)
}

// setMeta sets owner, mode and times through an fd of the object just
// created, so a symlink put in its place meanwhile is never followed.
func (s *cpTarSink) setMeta(pfd int, base, target string, hdr *tar.Header, uid, gid int) error {
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &cpPathError{op: "open", path: target, err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &cpPathError{op: "stat", path: target, err: err}
	}
	if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &cpPathError{op: "chown", path: target, err: err}
	}
	mtime := unix.NsecToTimespec(hdr.ModTime.UnixNano())
	if cpIsSymlink(st) {
		unix.UtimesNanoAt(pfd, base, []unix.Timespec{mtime, mtime}, unix.AT_SYMLINK_NOFOLLOW)
		return nil
	}
	// After chown, which clears set-id bits.
	if err := unix.Chmod(procFdPath(fd), uint32(hdr.Mode&0o7777)); err != nil {
		return &cpPathError{op: "chmod", path: target, err: err}
	}
	if cpIsDir(st) {
		s.dirs = append(s.dirs, cpDirTime{path: target, mtime: mtime})
		return nil
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, procFdPath(fd), []unix.Timespec{mtime, mtime}, 0); err != nil {
		return &cpPathError{op: "set times of", path: target, err: err}
	}
	return nil
}
