package jsonfile

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The one-pass encoder (Split finds only the last newline; appendLines cuts
// the lines while it copies them) is checked against the two passes it
// replaced: twoPassSplit, the former Split, and appendLineStamp of each
// entry, which encode_test.go checks against encoding/json.

// twoPassSplit is the former Batch.Split: each line found with IndexByte,
// cut after MaxLine bytes without a newline; it returns the entries and the
// unterminated rest.
func twoPassSplit(p []byte) (entries [][]byte, rest []byte) {
	for len(p) > 0 {
		if i := bytes.IndexByte(p[:min(len(p), MaxLine)], '\n'); i >= 0 {
			entries = append(entries, p[:i+1])
			p = p[i+1:]
			continue
		}
		if len(p) < MaxLine {
			return entries, p
		}
		entries = append(entries, p[:MaxLine])
		p = p[MaxLine:]
	}
	return entries, p
}

var testStamp = []byte("2026-11-24T08:00:00.123456789Z")

// copyBothWays feeds data as reads of the given sizes through Split (and an
// Add of the rest at the end, as CopyStream does at EOF), encoding each
// read's batch one-pass and two-pass, and fails at the first difference.
func copyBothWays(t testing.TB, data []byte, reads []int) {
	t.Helper()
	glue := entryGlue(nil, "stdout", testStamp)
	var b Batch
	var got, want []byte
	var held []byte
	for k, n := range reads {
		buf := append(held, data[:n]...)
		data = data[n:]
		last := k == len(reads)-1
		rest := b.Split("stdout", buf)
		entries, wantRest := twoPassSplit(buf)
		if !bytes.Equal(rest, wantRest) {
			t.Fatalf("read %d: Split left %q, the two-pass split %q", k, rest, wantRest)
		}
		if last && len(rest) > 0 {
			b.Add("stdout", rest)
			entries = append(entries, rest)
			rest = nil
		}
		got = b.appendEncoded(got[:0], glue, testStamp)
		b.reset()
		want = want[:0]
		for _, e := range entries {
			want = appendLineStamp(want, "stdout", e, testStamp)
		}
		if !bytes.Equal(got, want) {
			at := 0
			for at < min(len(got), len(want)) && got[at] == want[at] {
				at++
			}
			t.Fatalf("read %d of %q: one-pass and two-pass encodings differ at byte %d:\n got %q\nwant %q",
				k, buf, at, got[max(0, at-40):min(len(got), at+40)], want[max(0, at-40):min(len(want), at+40)])
		}
		held = append([]byte(nil), rest...)
	}
}

// randomLog is text of lines of random lengths (some past MaxLine) made of
// plain bytes, JSON specials, multi-byte and invalid UTF-8.
func randomLog(r *rand.Rand, size int) []byte {
	pieces := []string{"a", "Z", "0", " ", "~", "\t", "\r", "\"", "\\", "/", "\x00", "\x01", "\x1f", "\x7f",
		"é", "€", "😀", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\x80", "\xbf", "\xff", "\xfe", "\xed\xa0\x80"}
	out := make([]byte, 0, size+8)
	for len(out) < size {
		var n int
		switch r.IntN(8) {
		case 0:
			n = MaxLine - 4 + r.IntN(8) // around the cut
		case 1:
			n = r.IntN(3 * MaxLine)
		default:
			n = r.IntN(200)
		}
		plain := r.IntN(4) != 0 // mostly plain lines, as logs are
		for range n {
			if plain && r.IntN(64) != 0 {
				out = append(out, byte('a'+r.IntN(26)))
			} else {
				out = append(out, pieces[r.IntN(len(pieces))]...)
			}
		}
		if r.IntN(10) != 0 {
			out = append(out, '\n')
		}
	}
	return out
}

// randomReads cuts size into read sizes, some tiny, some whole buffers.
func randomReads(r *rand.Rand, size int) []int {
	var reads []int
	for size > 0 {
		n := min(size, 1+r.IntN([]int{8, 300, 5000, readSize}[r.IntN(4)]))
		reads = append(reads, n)
		size -= n
	}
	return append(reads, 0) // the EOF read
}

func TestOnePassEncodingIsTheTwoPassEncodingOfTheSameReads(t *testing.T) {
	js := jsonLines() // quotes every few bytes
	copyBothWays(t, js, []int{len(js) / 3, len(js) - len(js)/3, 0})
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		data := randomLog(r, r.IntN(100<<10))
		copyBothWays(t, data, randomReads(r, len(data)))
	}
}

// Every line length around a word, around MaxLine and around both, with a
// special byte or a multi-byte rune at every position near the end.
func TestOnePassEncodingAtEveryLengthAndPosition(t *testing.T) {
	var lengths []int
	for _, span := range [][2]int{{0, 18}, {60, 72}, {MaxLine - 10, MaxLine + 10}, {2*MaxLine - 3, 2*MaxLine + 3}} {
		for n := span[0]; n <= span[1]; n++ {
			lengths = append(lengths, n)
		}
	}
	for _, n := range lengths {
		for _, mark := range []string{"", "\n", "\"", "\x01", "\xff", "é", "€", "😀", `{"a":"\"b\\",` + "\xc3\"\n\"\\"} {
			for pos := max(0, n-12); pos <= n; pos++ {
				line := bytes.Repeat([]byte("x"), n)
				line = append(line[:pos], append([]byte(mark), line[pos:]...)...)
				data := append(append(line, '\n'), line...) // a terminated line, then the same unterminated
				copyBothWays(t, data, []int{len(data), 0})
				copyBothWays(t, data, []int{len(data) / 2, len(data) - len(data)/2, 0})
			}
		}
	}
}

func FuzzOnePassEncodingIsTheTwoPassEncoding(f *testing.F) {
	f.Add([]byte("plain ascii text of a typical log line\n"), uint16(0), uint16(7))
	f.Add([]byte("\"quoted\"\n\\ back\x01slash \xff\xfe é €\n\n"), uint16(3), uint16(0))
	f.Add([]byte("a line without its end, repeated past MaxLine: é"), uint16(400), uint16(1000))
	f.Add([]byte(`{"level":"info","msg":"a \"quoted\" word","path":"C:\\tmp"}`+"\n"), uint16(20), uint16(300))
	f.Fuzz(func(t *testing.T, s []byte, repeat, read uint16) {
		// Repeated to reach lines past MaxLine, which the fuzzer's own
		// inputs seldom do.
		data := bytes.Repeat(s, 1+int(repeat)%(3*MaxLine/max(1, len(s))+1))
		// At most 64 reads: each copies what is held, up to MaxLine.
		var reads []int
		for n, step := len(data), max(1+int(read), len(data)/64); n > 0; n -= min(n, step) {
			reads = append(reads, min(n, step))
		}
		copyBothWays(t, data, append(reads, 0))
	})
}

// twoPassFiles is where the former Log.Write, going line by line, started
// new files: the contents of each file, the first one holding size0 bytes
// already.
func twoPassFiles(size0, maxSize int64, enc []byte) []string {
	var ends []int
	for i, c := range enc {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	files := []string{""}
	size, start := size0, 0
	for i, end := range ends {
		lineStart := 0
		if i > 0 {
			lineStart = ends[i-1]
		}
		if size+int64(end-start) > maxSize && size+int64(lineStart-start) > 0 {
			files[len(files)-1] += string(enc[start:lineStart])
			files = append(files, "")
			start, size = lineStart, 0
		}
	}
	files[len(files)-1] += string(enc[start:])
	return files
}

func TestRotationCutsBetweenTheLinesTheLineByLineRuleCut(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for k := range 100 {
		var enc []byte
		for range r.IntN(30) {
			enc = AppendLine(enc, "stdout", bytes.Repeat([]byte("y"), r.IntN(120)), time.Unix(int64(k), 0))
		}
		maxSize := int64(1 + r.IntN(600))
		size0 := int64(r.IntN(int(maxSize) + 100))
		want := twoPassFiles(size0, maxSize, enc)

		path := filepath.Join(t.TempDir(), "c-json.log")
		if err := os.WriteFile(path, bytes.Repeat([]byte("."), int(size0)), 0o600); err != nil {
			t.Fatal(err)
		}
		w, err := Open(Config{Path: path, MaxSize: maxSize, MaxFiles: len(want) + 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.writeRotating(enc); err != nil {
			t.Fatal(err)
		}
		w.Close()
		var got []string
		for n := len(want); n >= 0; n-- {
			data, err := os.ReadFile(RotatedPath(path, n))
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(data))
		}
		got[0] = got[0][size0:]
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("size %d, max-size %d: files\n%q\nwant\n%q", size0, maxSize, got, want)
		}
	}
}

// benchLines is 256 KiB of 100-byte lines, as `yes` of 99 bytes writes
// them.
func benchLines() []byte {
	return bytes.Repeat(append(bytes.Repeat([]byte("x"), 99), '\n'), (256<<10)/100)
}

// The logging binary's own work for one read buffer: split it into entries
// and encode them.
func BenchmarkEncodeReadBufferOf100ByteLines(b *testing.B) { benchmarkEncode(b, benchLines()) }

func benchmarkEncode(b *testing.B, buf []byte) {
	glue := entryGlue(nil, "stdout", testStamp)
	var batch Batch
	var enc []byte
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		batch.Split("stdout", buf)
		enc = batch.appendEncoded(enc[:0], glue, testStamp)
		batch.reset()
	}
}

// The same through Log.Write (time stamp, lock, write(2)) to /dev/null.
func BenchmarkLogWriteReadBufferOf100ByteLines(b *testing.B) {
	w, err := Open(Config{Path: os.DevNull, MaxFiles: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	buf := benchLines()
	var batch Batch
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		batch.Split("stdout", buf)
		if err := w.Write(&batch); err != nil {
			b.Fatal(err)
		}
	}
}

// The same work as the former encoder did it, for comparison: IndexByte for
// each line, then appendLineStamp's scan and copy.
func BenchmarkTwoPassEncodeReadBufferOf100ByteLines(b *testing.B) {
	benchmarkTwoPassEncode(b, benchLines())
}

func benchmarkTwoPassEncode(b *testing.B, buf []byte) {
	var enc []byte
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		entries, _ := twoPassSplit(buf)
		enc = enc[:0]
		for _, e := range entries {
			enc = appendLineStamp(enc, "stdout", e, testStamp)
		}
	}
}

// jsonLines is 256 KiB of lines that are JSON themselves, as many services
// log: a quote every few bytes.
func jsonLines() []byte {
	line := `{"level":"info","ts":"2026-11-24T08:00:00.123Z","msg":"request served","status":200,"path":"/api/items/42"}` + "\n"
	return bytes.Repeat([]byte(line), (256<<10)/len(line))
}

func BenchmarkEncodeReadBufferOfJSONLines(b *testing.B) { benchmarkEncode(b, jsonLines()) }

func BenchmarkTwoPassEncodeReadBufferOfJSONLines(b *testing.B) {
	benchmarkTwoPassEncode(b, jsonLines())
}

// A pipe (or FIFO) left at the default 64 KiB is read full at each read
// when its writer is in full flow; waiting batchWait after such a read
// would stop the writer each time (at least 512 ms for these 32 MiB, as
// the wait is at least 1 ms a read). It takes some 40 ms.
func TestAWriterInFullFlowIsNotStoppedByADefaultSizePipe(t *testing.T) {
	w, err := Open(Config{Path: os.DevNull, MaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	data := bytes.Repeat(append(bytes.Repeat([]byte("x"), 99), '\n'), 320<<10) // 32 MiB
	go func() { pw.Write(data); pw.Close() }()
	start := time.Now()
	if err := CopyStream(w, "stdout", Pipe(pr.Fd())); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 400*time.Millisecond {
		t.Fatalf("32 MiB through a 64 KiB pipe took %v: the logger waits after full reads", took)
	}
}
