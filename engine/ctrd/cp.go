package ctrd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// CopyOptions are docker cp's flags.
type CopyOptions struct {
	// FollowLink (-L) copies what a symlink named as the source points to.
	FollowLink bool
	// Archive (-a) keeps the source's uid:gid. Without it, files copied into
	// a container belong to its root (0:0) and files copied out to the user
	// running stack.
	Archive bool
	// Name is the container's name, for messages; the ID when empty.
	Name string
}

// CopyFromContainer copies srcPath of the container to dstPath on the host,
// with docker cp's rules. The container may be running (its mounts are
// seen, volumes and tmpfs included) or not (its filesystem is mounted for
// the copy).
func (c *Client) CopyFromContainer(ctx context.Context, id, srcPath, dstPath string, opts CopyOptions) error {
	host, err := openCpRoot("/", true)
	if err != nil {
		return err
	}
	defer host.Close()
	return c.withContainerRoot(ctx, id, func(root *cpRoot) error {
		src := copySide{root: root, path: cpContainerPath(srcPath), where: "container " + opts.name(id)}
		dst := copySide{root: host, path: cpHostPath(dstPath), where: "the host"}
		owner := &[2]int{os.Getuid(), os.Getgid()}
		return copyBetween(src, dst, opts.FollowLink, cpKeepOwner(opts.Archive, owner))
	})
}

// ArchiveFromContainer writes srcPath of the container to w as a tar
// stream, as `docker cp CONTAINER:SRC -` does.
func (c *Client) ArchiveFromContainer(ctx context.Context, id, srcPath string, w io.Writer, opts CopyOptions) error {
	return c.withContainerRoot(ctx, id, func(root *cpRoot) error {
		src := copySide{root: root, path: cpContainerPath(srcPath), where: "container " + opts.name(id)}
		follow := followsLast(src.path, opts.FollowLink)
		if _, err := src.stat(follow); err != nil {
			return err
		}
		bw := bufio.NewWriterSize(w, cpBufferSize)
		if err := cpWriteTar(bw, root, src.path, cpSourceName(src.path), follow); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// CopyToContainer copies srcPath on the host to dstPath in the container.
func (c *Client) CopyToContainer(ctx context.Context, id, srcPath, dstPath string, opts CopyOptions) error {
	host, err := openCpRoot("/", true)
	if err != nil {
		return err
	}
	defer host.Close()
	return c.withContainerRoot(ctx, id, func(root *cpRoot) error {
		src := copySide{root: host, path: cpHostPath(srcPath), where: "the host"}
		dst := copySide{root: root, path: cpContainerPath(dstPath), where: "container " + opts.name(id)}
		return copyBetween(src, dst, opts.FollowLink, cpKeepOwner(opts.Archive, &[2]int{0, 0}))
	})
}

// ExtractToContainer unpacks the tar stream r into dstPath of the
// container, which must be a directory (`docker cp - CONTAINER:DST`).
func (c *Client) ExtractToContainer(ctx context.Context, id string, r io.Reader, dstPath string, opts CopyOptions) error {
	return c.withContainerRoot(ctx, id, func(root *cpRoot) error {
		dst := copySide{root: root, path: cpContainerPath(dstPath), where: "container " + opts.name(id)}
		st, err := dst.stat(true)
		if err != nil {
			return err
		}
		if !cpIsDir(st) {
			return fmt.Errorf("destination %s in %s must be a directory", dstPath, dst.where)
		}
		sink := &cpTarSink{root: root, dir: dst.path, owner: cpKeepOwner(opts.Archive, &[2]int{0, 0})}
		return sink.extract(bufio.NewReaderSize(r, cpBufferSize))
	})
}

// cpBufferSize batches tar headers and small files into fewer writes.
const cpBufferSize = 256 << 10

func (o CopyOptions) name(id string) string {
	if o.Name != "" {
		return o.Name
	}
	return id
}

func cpKeepOwner(archive bool, owner *[2]int) *[2]int {
	if archive {
		return nil
	}
	return owner
}

// copySide is a path in a root, with words for messages.
type copySide struct {
	root  *cpRoot
	path  string
	where string // "container demo-web-1", "the host"
}

// stat stats the path, with errors that name it and where it was looked for.
func (s copySide) stat(follow bool) (unix.Stat_t, error) {
	st, err := s.root.stat(s.path, follow)
	switch {
	case err == unix.ENOENT:
		return st, fmt.Errorf("could not find %s in %s: %w", s.path, s.where, unix.ENOENT)
	case err == unix.ENOTDIR:
		return st, fmt.Errorf("%s in %s: %w", s.path, s.where, unix.ENOTDIR)
	case err != nil:
		return st, fmt.Errorf("%s in %s: %w", s.path, s.where, err)
	}
	return st, nil
}

// end describes the destination for the rules: a symlink there is
// replaced by its target (resolved inside its root), so the copy writes
// through it as docker cp does; a missing one needs its parent directory.
func (s copySide) end() (cpEnd, error) {
	if !assertsDirectory(s.path) {
		p, err := s.root.followLast(s.path)
		if err != nil {
			return cpEnd{}, &cpPathError{op: "resolve", path: s.path, err: err}
		}
		s.path = p
	}
	st, err := s.stat(true)
	if err == nil {
		return cpEnd{Path: s.path, Exists: true, IsDir: cpIsDir(st)}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return cpEnd{}, err
	}
	parent, _ := splitPathDirEntry(s.path)
	pst, perr := copySide{root: s.root, path: parent, where: s.where}.stat(true)
	if perr != nil {
		return cpEnd{}, fmt.Errorf("destination's parent directory: %w", perr)
	}
	if !cpIsDir(pst) {
		return cpEnd{}, fmt.Errorf("destination's parent %s in %s is not a directory", parent, s.where)
	}
	return cpEnd{Path: s.path}, nil
}

// copyBetween copies src to dst with docker cp's rules, streaming a tar
// archive from one root into the other.
func copyBetween(src, dst copySide, followLink bool, owner *[2]int) error {
	follow := followsLast(src.path, followLink)
	st, err := src.stat(follow)
	if err != nil {
		return err
	}
	dstEnd, err := dst.end()
	if err != nil {
		return err
	}
	target, err := planCopy(cpEnd{Path: src.path, Exists: true, IsDir: cpIsDir(st)}, dstEnd)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		// Buffered: a pipe hands each small write (a 512-byte header) over
		// to the reader, which costs more than the write on a busy host.
		bw := bufio.NewWriterSize(pw, cpBufferSize)
		err := cpWriteTar(bw, src.root, src.path, target.Name, follow)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	sink := &cpTarSink{root: dst.root, dir: target.Dir, owner: owner}
	err = sink.extract(pr)
	pr.CloseWithError(errors.New("extraction stopped"))
	if err != nil {
		return fmt.Errorf("copy to %s in %s: %w", dst.path, dst.where, err)
	}
	return nil
}

// containerPath makes a container path absolute: docker cp reads relative
// container paths from "/". Trailing "/" and "/." are kept.
func cpContainerPath(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}

// hostPath makes a host path absolute from the working directory, keeping
// trailing "/" and "/." (path.Join would drop them).
func cpHostPath(p string) string {
	if path.IsAbs(p) {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	return strings.TrimRight(wd, "/") + "/" + p
}
