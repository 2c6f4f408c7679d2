package ctrd

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// The path rules of `docker cp`, in both directions:
//
//	source is a file:
//	  DEST does not exist          → the file is saved as DEST
//	  DEST does not exist, ends /  → error: the directory must exist
//	  DEST is a file               → DEST is overwritten
//	  DEST is a directory          → the file lands in it under its own name
//	source is a directory:
//	  DEST does not exist          → DEST is created with the directory's content
//	  DEST is a file               → error: cannot copy a directory to a file
//	  DEST is a directory          → SRC lands in it as DEST/<base of SRC>,
//	                                 or with SRC ending in "/." its content
//	                                 merges into DEST

var (
	// ErrCopyDirToFile is the copy of a directory onto an existing file.
	ErrCopyDirToFile = errors.New("cannot copy a directory to a file")
	// ErrCopyDestDir is a file copied to DEST/ when DEST does not exist.
	ErrCopyDestDir = errors.New("the destination directory must exist")
)

// cpEnd is one side of a copy, as the rules see it.
type cpEnd struct {
	Path   string // as given, trailing "/" or "/." kept
	Exists bool
	IsDir  bool
}

// cpTarget is where the source's top entry lands: Dir/Name. Name "."
// merges the source directory's content into Dir.
type cpTarget struct{ Dir, Name string }

// planCopy applies docker cp's rules to the source (which exists) and the
// destination as found.
func planCopy(src, dst cpEnd) (cpTarget, error) {
	dstDir, dstBase := splitPathDirEntry(dst.Path)
	srcBase := cpSourceName(src.Path)
	switch {
	case dst.Exists && dst.IsDir:
		return cpTarget{Dir: cpCleanPath(dst.Path), Name: srcBase}, nil
	case dst.Exists && src.IsDir:
		return cpTarget{}, fmt.Errorf("%w: %s exists and is not a directory", ErrCopyDirToFile, dst.Path)
	case dst.Exists, src.IsDir:
		return cpTarget{Dir: dstDir, Name: dstBase}, nil
	case assertsDirectory(dst.Path):
		return cpTarget{}, fmt.Errorf("%w: %s does not exist", ErrCopyDestDir, dst.Path)
	}
	return cpTarget{Dir: dstDir, Name: dstBase}, nil
}

// sourceName is the name the source's top entry takes in an archive: its
// base, "." for "dir/." and for the root.
func cpSourceName(p string) string {
	if _, base := splitPathDirEntry(p); base != "/" {
		return base
	}
	return "."
}

// splitPathDirEntry splits p into its parent and its last element, as
// docker does: "/a/b/." gives ("/a/b", "."), "/a/b/" gives ("/a", "b").
func splitPathDirEntry(p string) (dir, base string) {
	cleaned := cpCleanPath(p)
	if specifiesCurrentDir(p) {
		cleaned = strings.TrimSuffix(cleaned, "/") + "/."
	}
	return path.Dir(cleaned), path.Base(cleaned)
}

// cleanPath is path.Clean, keeping relative paths relative.
func cpCleanPath(p string) string {
	if p == "" {
		return "."
	}
	return path.Clean(p)
}

// assertsDirectory: the path ends with "/" or "/.", so it must be a directory.
func assertsDirectory(p string) bool {
	return strings.HasSuffix(p, "/") || specifiesCurrentDir(p)
}

// specifiesCurrentDir: the path ends with "/." (or is ".").
func specifiesCurrentDir(p string) bool {
	return p == "." || strings.HasSuffix(p, "/.")
}

// followsLast says whether the last element of a source path is followed
// when it is a symlink: with -L, or when the path asserts a directory.
func followsLast(p string, followLink bool) bool {
	return followLink || assertsDirectory(p)
}
