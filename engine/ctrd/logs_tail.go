package ctrd

import (
	"errors"
	"io"
	"os"
)

// tailBlock is how much tailOffset reads at a time, walking backwards.
const tailBlock = 32 << 10

// tailOffset finds where the last n lines of a file of the given size begin,
// reading backwards from the end in blocks, so its cost depends on n and the
// line length, not on the file's size. It returns the offset and how many
// lines it found (fewer than n when the file has fewer: then offset is 0).
func tailOffset(r io.ReaderAt, size int64, n int) (int64, int, error) {
	if n <= 0 || size <= 0 {
		return size, 0, nil
	}
	buf := make([]byte, tailBlock)
	found := 0
	for pos := size; pos > 0; {
		start := max(0, pos-tailBlock)
		chunk := buf[:pos-start]
		if _, err := r.ReadAt(chunk, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' || start+int64(i) == size-1 {
				continue // the newline ending the last line starts nothing
			}
			if found++; found == n {
				return start + int64(i) + 1, n, nil
			}
		}
		pos = start
	}
	return 0, found + 1, nil
}

// tailStart picks, among files ordered newest first, the file and offset
// where the last n lines begin, crossing into rotated files as needed.
func tailStart(files []string, n int) (int, int64, error) {
	for i, path := range files {
		off, got, err := tailFile(path, n)
		if err != nil {
			return 0, 0, err
		}
		if got >= n || i == len(files)-1 {
			return i, off, nil
		}
		n -= got
	}
	return 0, 0, nil
}

func tailFile(path string, n int) (int64, int, error) {
	f, err := os.Open(path)
	if isNotExist(err) {
		return 0, 0, nil
	} else if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	return tailOffset(f, fi.Size(), n)
}
