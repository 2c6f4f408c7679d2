package ctrd

import (
	"github.com/stackdev/stack/engine/jsonfile"

	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// writeLog appends json-file lines "<prefix> <i>" timed t0+i seconds.
func writeLog(t *testing.T, path, prefix string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := from; i < to; i++ {
		w.Write(jsonfile.AppendLine(nil, "stdout", fmt.Appendf(nil, "%s %d\n", prefix, i), t0.Add(time.Duration(i)*time.Second)))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func readAll(t *testing.T, r *LogReader) []string {
	t.Helper()
	var out []string
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSuffix(e.Text, "\n"))
	}
}

func openLog(t *testing.T, path string, q LogQuery) *LogReader {
	t.Helper()
	r, err := OpenLog(path, q)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

type countingReaderAt struct {
	r io.ReaderAt
	n int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

func TestTailReadsOnlyTheEndOfA50MBLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big-json.log")
	writeLog(t, path, strings.Repeat("x", 60)+" line", 0, 400_000)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if fi.Size() < 50<<20 {
		t.Fatalf("test file is %d bytes, want at least 50 MB", fi.Size())
	}
	cr := &countingReaderAt{r: f}
	off, got, err := tailOffset(cr, fi.Size(), 100)
	if err != nil || got != 100 {
		t.Fatalf("tailOffset = %d lines, %v", got, err)
	}
	if cr.n > 2*tailBlock {
		t.Fatalf("tail 100 read %d bytes of a %d-byte file, want at most %d", cr.n, fi.Size(), 2*tailBlock)
	}
	if fi.Size()-off > 20_000 {
		t.Fatalf("tail 100 starts %d bytes from the end", fi.Size()-off)
	}
	lines := readAll(t, openLog(t, path, LogQuery{Tail: 3}))
	want := "[" + strings.Repeat("x", 60) + " line 399997 " + strings.Repeat("x", 60) + " line 399998 " + strings.Repeat("x", 60) + " line 399999]"
	if fmt.Sprint(lines) != want {
		t.Fatalf("tail 3 = %v", lines)
	}
}

func TestTailOffsetCountsLines(t *testing.T) {
	for _, tc := range []struct {
		text      string
		n         int
		wantOff   int64
		wantLines int
	}{
		{"a\nb\nc\n", 2, 2, 2},
		{"a\nb\nc\n", 3, 0, 3},
		{"a\nb\nc\n", 10, 0, 3},
		{"a\nb\nc\n", 0, 6, 0},
		{"", 5, 0, 0},
	} {
		off, n, err := tailOffset(strings.NewReader(tc.text), int64(len(tc.text)), tc.n)
		if err != nil || off != tc.wantOff || (tc.text != "" && n != tc.wantLines) {
			t.Errorf("tailOffset(%q, %d) = %d, %d, %v; want %d, %d", tc.text, tc.n, off, n, err, tc.wantOff, tc.wantLines)
		}
	}
}

func TestTailCrossesIntoRotatedFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	writeLog(t, path+".2", "l", 0, 5)
	writeLog(t, path+".1", "l", 5, 10)
	writeLog(t, path, "l", 10, 12)
	if got := fmt.Sprint(readAll(t, openLog(t, path, LogQuery{Tail: 4}))); got != "[l 8 l 9 l 10 l 11]" {
		t.Fatalf("tail 4 = %s", got)
	}
	if got := readAll(t, openLog(t, path, LogQuery{Tail: -1})); len(got) != 12 || got[0] != "l 0" {
		t.Fatalf("all = %v, want 12 lines from the oldest file", got)
	}
}

func TestSinceAndUntilSelectByTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	writeLog(t, path, "l", 0, 10)
	q := LogQuery{Tail: -1, Since: t0.Add(3 * time.Second), Until: t0.Add(5 * time.Second)}
	if got := fmt.Sprint(readAll(t, openLog(t, path, q))); got != "[l 3 l 4 l 5]" {
		t.Fatalf("since 3s until 5s = %s", got)
	}
}

func TestReaderFollowsGrowthRotationTruncationAndRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	r := openLog(t, path, LogQuery{Tail: -1, Follow: true}) // the file does not exist yet
	if got := readAll(t, r); len(got) != 0 {
		t.Fatalf("before the file exists: %v", got)
	}
	writeLog(t, path, "l", 0, 2)
	// A half-written line is not returned until it is complete.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	line := jsonfile.AppendLine(nil, "stdout", []byte("l 2\n"), t0)
	f.Write(line[:10])
	if got := fmt.Sprint(readAll(t, r)); got != "[l 0 l 1]" {
		t.Fatalf("first read = %s", got)
	}
	f.Write(line[10:])
	f.Close()
	writeLog(t, path, "l", 3, 4) // a restarted task appends
	if got := fmt.Sprint(readAll(t, r)); got != "[l 2 l 3]" {
		t.Fatalf("after growth = %s", got)
	}
	os.Rename(path, path+".1")
	writeLog(t, path, "l", 4, 7)
	if got := fmt.Sprint(readAll(t, r)); got != "[l 4 l 5 l 6]" {
		t.Fatalf("after rotation = %s", got)
	}
	// Truncated by hand: noticed while the file is shorter than what was read.
	os.Truncate(path, 0)
	writeLog(t, path, "t", 0, 1)
	if got := fmt.Sprint(readAll(t, r)); got != "[t 0]" {
		t.Fatalf("after truncation = %s", got)
	}
	os.Remove(path)
	if got := readAll(t, r); len(got) != 0 {
		t.Fatalf("after deletion = %v", got)
	}
	writeLog(t, path, "n", 0, 1)
	if got := fmt.Sprint(readAll(t, r)); got != "[n 0]" {
		t.Fatalf("after the file came back = %s", got)
	}
}

func TestMergeLogsIsInTimeOrderAcrossContainers(t *testing.T) {
	dir := t.TempDir()
	var readers []*LogReader
	for i, name := range []string{"a", "b", "c"} {
		path := filepath.Join(dir, name+"-json.log")
		f, _ := os.Create(path)
		for j := 0; j < 4; j++ {
			sec := time.Duration(j*3+i) * time.Second
			f.Write(jsonfile.AppendLine(nil, "stdout", fmt.Appendf(nil, "%s%d\n", name, j), t0.Add(sec)))
		}
		f.Close()
		readers = append(readers, openLog(t, path, LogQuery{Tail: -1}))
	}
	var got []string
	err := MergeLogs(readers, func(i int, e LogEntry) error {
		got = append(got, fmt.Sprintf("%d:%s", i, strings.TrimSpace(e.Text)))
		return nil
	})
	want := "[0:a0 1:b0 2:c0 0:a1 1:b1 2:c1 0:a2 1:b2 2:c2 0:a3 1:b3 2:c3]"
	if err != nil || fmt.Sprint(got) != want {
		t.Fatalf("merged = %v, %v; want %s", got, err, want)
	}
}

func TestParseLogTime(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"42m", now.Add(-42 * time.Minute)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"10s", now.Add(-10 * time.Second)},
		{"2026-11-23T10:00:00Z", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)},
		{"2026-11-23T10:00:00.5+01:00", time.Date(2026, 11, 23, 9, 0, 0, 5e8, time.UTC)},
		{"2026-11-23T10:00:00", time.Date(2026, 11, 23, 10, 0, 0, 0, time.Local)},
		{"2026-11-23", time.Date(2026, 11, 23, 0, 0, 0, 0, time.Local)},
		{"1700000000", time.Unix(1700000000, 0)},
		{"1700000000.25", time.Unix(1700000000, 25e7)},
	} {
		got, err := ParseLogTime(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseLogTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2026-13-01", "-5m", "12:00"} {
		if _, err := ParseLogTime(bad, now); err == nil || !strings.Contains(err.Error(), "is not a time") {
			t.Errorf("ParseLogTime(%q) = %v, want an error saying it is not a time", bad, err)
		}
	}
}

func TestDecodeOwnLineAgreesWithEncodingJSON(t *testing.T) {
	texts := []string{"plain\n", "", "quote \" and \\ backslash / slash\n", "tab\tcr\r\n", "ctl \x00\x01\x1f\x7f",
		"bad utf8 \xff\xfe", "ünïcödé ✓ 😀\n", strings.Repeat("x", 20000), "<html>&amp;</html>"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		texts = append(texts, string(b))
	}
	for _, text := range texts {
		line := jsonfile.AppendLine(nil, "stderr", []byte(text), t0.Add(123456789))
		fast, ok := decodeOwnLine(line)
		var slow logLine
		if err := json.Unmarshal(line, &slow); err != nil {
			t.Fatalf("%q: encoding/json: %v", line, err)
		}
		if !ok || fast.Text != slow.Log || fast.Stream != slow.Stream || !fast.Time.Equal(slow.Time) {
			t.Errorf("%q: fast %+v (%v), encoding/json %+v", text, fast, ok, slow)
		}
	}
	if _, ok := decodeLogLine([]byte(`{"time":"2026-11-23T12:00:00Z","stream":"stdout","log":"other order\n"}`)); !ok {
		t.Error("a line in another key order (written by another tool) is not read")
	}
}

func TestReaderFollowsSeveralRotationsBetweenReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	writeLog(t, path, "l", 0, 2)
	r := openLog(t, path, LogQuery{Tail: -1, Follow: true})
	if got := fmt.Sprint(readAll(t, r)); got != "[l 0 l 1]" {
		t.Fatalf("first read = %s", got)
	}
	writeLog(t, path, "l", 2, 3)
	for i := 3; i < 9; i += 2 { // three rotations before the next read
		os.Rename(path+".2", path+".3")
		os.Rename(path+".1", path+".2")
		os.Rename(path, path+".1")
		writeLog(t, path, "l", i, i+2)
	}
	if got := fmt.Sprint(readAll(t, r)); got != "[l 2 l 3 l 4 l 5 l 6 l 7 l 8]" {
		t.Fatalf("after three rotations = %s", got)
	}
}

func TestReaderWithoutFollowEndsWhereTheLogEndedWhenOpened(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	writeLog(t, path, "l", 0, 2)
	r := openLog(t, path, LogQuery{Tail: -1})
	if e, err := r.Next(); err != nil || e.Text != "l 0\n" {
		t.Fatalf("first = %+v, %v", e, err)
	}
	writeLog(t, path, "l", 2, 4) // a container writing faster than the reader
	if got := fmt.Sprint(readAll(t, r)); got != "[l 1]" {
		t.Fatalf("rest = %s, want only what was there when opened", got)
	}
}
