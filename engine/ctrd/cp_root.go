package ctrd

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// cpRoot is a directory that every path of a copy is resolved in as if it
// were "/": a container's root seen from the host (/proc/<pid>/root, or its
// snapshot mounted on a temporary directory), or the host's own "/".
//
// Resolution goes through openat2(2) with RESOLVE_IN_ROOT, so a symlink in
// the container that points at /etc/shadow, or a "../.." chain, ends inside
// the container's root and never on the host's file.
type cpRoot struct {
	fd   int  // O_PATH directory
	host bool // the host's "/": magic links (/proc/self/fd/N) allowed
}

// openCpRoot opens dir as a root. The caller closes it.
func openCpRoot(dir string, host bool) (*cpRoot, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &cpPathError{op: "open", path: dir, err: err}
	}
	return &cpRoot{fd: fd, host: host}, nil
}

func (r *cpRoot) Close() error { return unix.Close(r.fd) }

// open resolves p inside the root and opens it with flags. With follow
// false, a symlink as the last component is opened itself (with O_PATH).
func (r *cpRoot) open(p string, flags int, follow bool) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT}
	if !follow {
		how.Flags |= unix.O_NOFOLLOW
	}
	if !r.host {
		how.Resolve |= unix.RESOLVE_NO_MAGICLINKS
	}
	rel := strings.TrimLeft(p, "/")
	if rel == "" {
		rel = "."
	}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(r.fd, rel, &how)
		// EAGAIN: a rename raced with the resolution; the kernel asks to retry.
		if (err == unix.EAGAIN || err == unix.EINTR) && tries < 16 {
			continue
		}
		if err != nil {
			return -1, err
		}
		return fd, nil
	}
}

// stat describes p; follow decides for a symlink as the last component.
func (r *cpRoot) stat(p string, follow bool) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := r.open(p, unix.O_PATH, follow)
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	err = unix.Fstat(fd, &st)
	return st, err
}

// followLast replaces p with its target while its last element is a
// symlink; a relative target is read from p's directory. Where the target
// leads is resolved later, inside the root like every path.
func (r *cpRoot) followLast(p string) (string, error) {
	for range 40 {
		fd, err := r.open(p, unix.O_PATH, false)
		if err != nil {
			return p, nil // missing: the caller's stat says so
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		if err != nil || !cpIsSymlink(st) {
			unix.Close(fd)
			return p, err
		}
		target, err := cpReadlink(fd)
		unix.Close(fd)
		if err != nil {
			return "", err
		}
		if !path.IsAbs(target) {
			parent, _ := splitPathDirEntry(p)
			target = path.Join(parent, target)
		}
		p = target
	}
	return "", unix.ELOOP
}

// mkdirAll creates p and its missing parents (0755, owned by uid:gid as
// the archive's directories would be) and returns an O_PATH fd of p.
func (r *cpRoot) mkdirAll(p string, uid, gid int) (int, error) {
	fd, err := r.open(p, unix.O_PATH|unix.O_DIRECTORY, true)
	if err != unix.ENOENT {
		return fd, err
	}
	parent, base := path.Split(strings.TrimRight(p, "/"))
	if base == "" || base == "." || base == ".." {
		return -1, err
	}
	pfd, err := r.mkdirAll(parent, uid, gid)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
		return -1, err
	}
	fd, err = unix.Openat(pfd, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// fdPath names an open fd so that calls without an fd variant (chmod,
// utimes on O_PATH fds) reach the very inode and follow no symlink.
func procFdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// isDir says whether st describes a directory.
func cpIsDir(st unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

func cpIsSymlink(st unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFLNK }

// cpPathError is an error about one path, in the words docker cp uses.
type cpPathError struct {
	op, path string
	err      error
}

func (e *cpPathError) Error() string {
	return fmt.Sprintf("%s %s: %s", e.op, e.path, cpErrno(e.err))
}

func (e *cpPathError) Unwrap() error { return e.err }

func cpErrno(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}
