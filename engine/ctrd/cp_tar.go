package ctrd

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// cpTarSource writes a tree of a root as a tar stream. It walks with file
// descriptors, each child opened relative to its directory with
// O_NOFOLLOW, so a symlink swapped in during the walk is archived as a
// symlink and never followed out of the root.
type cpTarSource struct {
	tw    *tar.Writer
	links map[[2]uint64]string // (dev, inode) → first name, for hard links
}

// writeTar archives p of root as name (and name/... below a directory).
// follow decides for a symlink as p's last element.
func cpWriteTar(w io.Writer, root *cpRoot, p, name string, follow bool) error {
	fd, err := root.open(p, unix.O_PATH, follow)
	if err != nil {
		return &cpPathError{op: "open", path: p, err: err}
	}
	s := &cpTarSource{tw: tar.NewWriter(w), links: map[[2]uint64]string{}}
	err = s.add(fd, name)
	unix.Close(fd)
	if err != nil {
		return err
	}
	return s.tw.Close()
}

// add archives the object open as fd (O_PATH) under name; it owns fd's
// lifetime only while running, the caller closes it.
func (s *cpTarSource) add(fd int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &cpPathError{op: "stat", path: name, err: err}
	}
	hdr := cpTarHeader(st, name)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return s.addDir(fd, hdr)
	case unix.S_IFREG:
		return s.addFile(fd, st, hdr)
	case unix.S_IFLNK:
		target, err := cpReadlink(fd)
		if err != nil {
			return &cpPathError{op: "readlink", path: name, err: err}
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets are not archived, as with docker cp
	}
	return s.tw.WriteHeader(hdr)
}

func cpTarHeader(st unix.Stat_t, name string) *tar.Header {
	return &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
}

func (s *cpTarSource) addFile(fd int, st unix.Stat_t, hdr *tar.Header) error {
	key := [2]uint64{st.Dev, st.Ino}
	if first, ok := s.links[key]; ok && st.Nlink > 1 {
		hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
		return s.tw.WriteHeader(hdr)
	}
	if st.Nlink > 1 {
		s.links[key] = hdr.Name
	}
	f, err := os.OpenFile(procFdPath(fd), os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", hdr.Name, err)
	}
	defer f.Close()
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	if err := s.tw.WriteHeader(hdr); err != nil {
		return err
	}
	// A file that shrinks while archived would break the stream; a growing
	// one is cut at the size announced.
	if _, err := io.CopyN(s.tw, f, st.Size); err != nil {
		return fmt.Errorf("read %s: %w", hdr.Name, err)
	}
	return nil
}

func (s *cpTarSource) addDir(fd int, hdr *tar.Header) error {
	hdr.Typeflag = tar.TypeDir
	if hdr.Name != "." {
		hdr.Name += "/"
	} else {
		hdr.Name = "./"
	}
	if err := s.tw.WriteHeader(hdr); err != nil {
		return err
	}
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &cpPathError{op: "open", path: hdr.Name, err: err}
	}
	dir := os.NewFile(uintptr(dfd), hdr.Name)
	defer dir.Close()
	if cpPseudoFS(dfd) {
		return nil // /proc, /sys and the like: the directory, not its content
	}
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", hdr.Name, err)
	}
	slices.Sort(names)
	for _, n := range names {
		cfd, err := unix.Openat(dfd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT {
			continue // removed meanwhile
		} else if err != nil {
			return &cpPathError{op: "open", path: path.Join(hdr.Name, n), err: err}
		}
		err = s.add(cfd, path.Join(hdr.Name, n))
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// cpPseudoFilesystems are kernel interfaces mounted in a running container
// that docker cp does not see: their files are not data.
var cpPseudoFilesystems = map[int64]bool{
	unix.PROC_SUPER_MAGIC: true, unix.SYSFS_MAGIC: true, unix.CGROUP_SUPER_MAGIC: true,
	unix.CGROUP2_SUPER_MAGIC: true, unix.DEVPTS_SUPER_MAGIC: true, cpMqueueMagic: true,
	unix.SECURITYFS_MAGIC: true, unix.DEBUGFS_MAGIC: true, unix.TRACEFS_MAGIC: true, unix.BPF_FS_MAGIC: true,
}

const cpMqueueMagic = 0x19800202 // not in x/sys/unix

// pseudoFS says whether the directory open as fd is on such a filesystem.
func cpPseudoFS(fd int) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(fd, &st) == nil && cpPseudoFilesystems[int64(st.Type)]
}

// readlinkFd reads the target of the symlink open as fd (O_PATH).
func cpReadlink(fd int) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}
