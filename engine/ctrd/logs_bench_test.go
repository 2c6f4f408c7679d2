package ctrd

import (
	"github.com/stackdev/stack/engine/jsonfile"

	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkTail100 reads the last 100 lines of logs of 1 MiB and 1 GiB: the
// figures must be alike. The 1 GiB file starts with a hole (only its last
// MiB holds lines) so the benchmark does not write a gigabyte; tail never
// reads the part before its last blocks either way.
func BenchmarkTail100(b *testing.B) {
	for _, size := range []int64{1 << 20, 1 << 30} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "c-json.log")
			writeBenchLog(b, path, size)
			b.ResetTimer()
			for range b.N {
				r, err := OpenLog(path, LogQuery{Tail: 100})
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for ; ; n++ {
					if _, err := r.Next(); errors.Is(err, io.EOF) {
						break
					}
				}
				r.Close()
				if n != 100 {
					b.Fatalf("%d lines, want 100", n)
				}
			}
		})
	}
}

func writeBenchLog(b *testing.B, path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var data []byte // 512 KiB of whole lines, at the end of the file
	for len(data) < 1<<19 {
		data = jsonfile.AppendLine(data, "stdout", []byte("a typical log line of about sixty bytes, give or take a few\n"), t0)
	}
	if _, err := f.WriteAt(data, size-int64(len(data))); err != nil {
		b.Fatal(err)
	}
}
