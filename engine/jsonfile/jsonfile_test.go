package jsonfile

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

type jsonLine struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

func readJSONLines(t *testing.T, path string) []jsonLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []jsonLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l jsonLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: line %q is not JSON: %v", path, sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func newTestLog(t *testing.T, maxSize int64, maxFiles int) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c", "c-json.log")
	w, err := Open(Config{Path: path, MaxSize: maxSize, MaxFiles: maxFiles})
	if err != nil {
		t.Fatal(err)
	}
	return w, path
}

func TestLoggerWritesDockerJSONFileLinesForBothStreams(t *testing.T) {
	w, path := newTestLog(t, 0, 1)
	before := time.Now()
	err := CopyStreams(w, strings.NewReader("out 1\nout \"2\"\t<&>\n"), strings.NewReader("err \x01 \xff\n"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	got := map[string][]string{}
	for _, l := range readJSONLines(t, path) {
		if l.Time.Before(before) || l.Time.After(time.Now()) {
			t.Errorf("time %v is not the time of reading", l.Time)
		}
		got[l.Stream] = append(got[l.Stream], l.Log)
	}
	want := map[string][]string{"stdout": {"out 1\n", "out \"2\"\t<&>\n"}, "stderr": {"err \x01 \uFFFD\n"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lines = %q, want %q", got, want)
	}
}

func TestLoggerTimeHasNanosecondsAndEncodesLikeDocker(t *testing.T) {
	ts := time.Date(2026, 11, 23, 22, 17, 32, 649122293, time.UTC)
	got := string(AppendLine(nil, "stdout", []byte("out 0\n"), ts))
	want := `{"log":"out 0\n","stream":"stdout","time":"2026-11-23T22:17:32.649122293Z"}` + "\n"
	if got != want {
		t.Fatalf("line = %s, want %s", got, want)
	}
}

func TestLoggerFlushesAPartialLastLineAtEOF(t *testing.T) {
	w, path := newTestLog(t, 0, 1)
	if err := CopyStreams(w, strings.NewReader("whole\nno newline"), nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	lines := readJSONLines(t, path)
	if len(lines) != 2 || lines[1].Log != "no newline" {
		t.Fatalf("lines = %+v, want the partial line last, without a newline", lines)
	}
}

func TestLoggerCutsAnEndlessLineInto16KiBEntries(t *testing.T) {
	w, path := newTestLog(t, 0, 1)
	long := strings.Repeat("x", 40<<10) + "\n"
	if err := CopyStreams(w, strings.NewReader(long), nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var joined strings.Builder
	lines := readJSONLines(t, path)
	for _, l := range lines {
		if len(l.Log) > MaxLine {
			t.Errorf("entry of %d bytes, want at most %d", len(l.Log), MaxLine)
		}
		joined.WriteString(l.Log)
	}
	if len(lines) != 3 || joined.String() != long {
		t.Fatalf("%d entries joining to %d bytes, want 3 joining to the line", len(lines), joined.Len())
	}
}

func TestLoggerRotatesBySizeAndKeepsMaxFileFiles(t *testing.T) {
	w, path := newTestLog(t, 1024, 3)
	var in strings.Builder
	for i := range 200 {
		fmt.Fprintf(&in, "line %03d\n", i)
	}
	if err := CopyStreams(w, strings.NewReader(in.String()), nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	files, _ := filepath.Glob(path + "*")
	if len(files) != 3 {
		t.Fatalf("files = %v, want 3 (max-file)", files)
	}
	var all []jsonLine
	for _, n := range []int{2, 1, 0} {
		fi, err := os.Stat(RotatedPath(path, n))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1024 {
			t.Errorf("%s is %d bytes, over max-size 1024", fi.Name(), fi.Size())
		}
		all = append(all, readJSONLines(t, RotatedPath(path, n))...)
	}
	// The newest lines are kept, in order, oldest file first.
	last := all[len(all)-1].Log
	if last != "line 199\n" {
		t.Fatalf("last line = %q, want line 199", last)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Log <= all[i-1].Log {
			t.Fatalf("lines out of order across files: %q then %q", all[i-1].Log, all[i].Log)
		}
	}
}

func TestLoggerWithMaxFileOneTruncates(t *testing.T) {
	w, path := newTestLog(t, 200, 1)
	if err := CopyStreams(w, strings.NewReader(strings.Repeat("0123456789\n", 100)), nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	files, _ := filepath.Glob(path + "*")
	fi, _ := os.Stat(path)
	if len(files) != 1 || fi.Size() > 200 {
		t.Fatalf("files = %v, size %d; want one file of at most 200 bytes", files, fi.Size())
	}
}

func TestLoggerAppendsAcrossRestarts(t *testing.T) {
	w, path := newTestLog(t, 0, 1)
	CopyStreams(w, strings.NewReader("first run\n"), nil)
	w.Close()
	w, err := Open(Config{Path: path, MaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	CopyStreams(w, strings.NewReader("second run\n"), nil)
	w.Close()
	if lines := readJSONLines(t, path); len(lines) != 2 {
		t.Fatalf("lines = %+v, want both runs", lines)
	}
}

func TestLoggerReopensAFileDeletedByHand(t *testing.T) {
	w, path := newTestLog(t, 0, 1)
	var b Batch
	b.Add("stdout", []byte("before\n"))
	w.Write(&b)
	os.Remove(path)
	w.checked = time.Time{}
	b.Add("stdout", []byte("after\n"))
	w.Write(&b)
	w.Close()
	if lines := readJSONLines(t, path); len(lines) != 1 || lines[0].Log != "after\n" {
		t.Fatalf("lines = %+v, want the line written after the delete", lines)
	}
}

// The logging binary as the shim runs it: fds 3, 4 and 5, readiness before
// any output, and the pipes drained to EOF even after SIGTERM.
func TestLogDriverSignalsReadinessOnFd5AndDrainsAfterSIGTERM(t *testing.T) {
	if os.Getenv("STACK_LOG_DRIVER_CHILD") != "" {
		if err := RunDriver(os.Args[len(os.Args)-1]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "c-json.log")
	arg := Config{Path: path, MaxSize: 1 << 20, MaxFiles: 2}.Encode()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLogDriverSignalsReadinessOnFd5AndDrainsAfterSIGTERM$", arg)
	cmd.Env = append(os.Environ(), "STACK_LOG_DRIVER_CHILD=1")
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	readyR, readyW, _ := os.Pipe()
	cmd.ExtraFiles = []*os.File{outR, errR, readyW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outR.Close()
	errR.Close()
	readyW.Close()
	b := make([]byte, 1)
	if n, err := readyR.Read(b); n != 1 || err != nil {
		t.Fatalf("readiness: read %d bytes, %v; want one byte", n, err)
	}
	if _, err := io.ReadAll(readyR); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(outW, "before the signal")
	cmd.Process.Signal(os.Interrupt)
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	fmt.Fprintln(errW, "after the signal")
	fmt.Fprint(outW, "partial")
	outW.Close()
	errW.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("log driver: %v", err)
	}
	var got []string
	for _, l := range readJSONLines(t, path) {
		got = append(got, l.Stream+":"+l.Log)
	}
	slices.Sort(got)
	want := "[stderr:after the signal\n stdout:before the signal\n stdout:partial]"
	if fmt.Sprint(got) != want {
		t.Fatalf("lines = %q, want %s", got, want)
	}
}

func TestLoggerDoesNotRecreateARemovedContainerDirectory(t *testing.T) {
	w, path := newTestLog(t, 100, 2)
	var b Batch
	b.Add("stdout", []byte("before\n"))
	w.Write(&b)
	os.RemoveAll(filepath.Dir(path))
	w.checked = time.Time{}
	for range 5 { // past max-size too: rotation must not recreate it either
		b.Add("stdout", []byte("after the container was removed\n"))
		w.Write(&b)
	}
	w.Close()
	if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
		t.Fatalf("the removed directory is back: %v", err)
	}
}

func TestLoggerKeepsReadingWhenWritesFail(t *testing.T) {
	w, path := newTestLog(t, 100, 2)
	os.RemoveAll(filepath.Dir(path))
	in := strings.Repeat("a line that goes nowhere\n", 1000)
	r := strings.NewReader(in)
	if err := CopyStreams(w, r, nil); err == nil {
		t.Error("no error reported for the failed writes")
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes left unread: the container would block", r.Len())
	}
}

func TestLoggerTimesNeverGoBackWithinAFile(t *testing.T) {
	w, path := newTestLog(t, 0, 1)
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	for _, pw := range []*io.PipeWriter{outW, errW} {
		go func() {
			for i := range 2000 {
				fmt.Fprintf(pw, "line %d\n", i)
			}
			pw.Close()
		}()
	}
	if err := CopyStreams(w, outR, errR); err != nil {
		t.Fatal(err)
	}
	w.Close()
	lines := readJSONLines(t, path)
	if len(lines) != 4000 {
		t.Fatalf("%d lines, want 4000", len(lines))
	}
	for i := 1; i < len(lines); i++ {
		if lines[i].Time.Before(lines[i-1].Time) {
			t.Fatalf("line %d (%s) is older than the line before it", i, lines[i].Stream)
		}
	}
}

// The 1.6 shim keeps the pipes open until the task is deleted: a prompt or
// the last unterminated words of an exited container are written after a
// short wait, not held back until then.
func TestLoggerWritesAnUnterminatedLineAfterAShortWait(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reader func(*os.File) io.Reader
	}{
		{"file with read deadlines", func(f *os.File) io.Reader { return f }},
		{"Pipe, as the logging binary reads", func(f *os.File) io.Reader { return Pipe(f.Fd()) }},
	} {
		t.Run(tc.name, func(t *testing.T) { testUnterminatedLineAfterAShortWait(t, tc.reader) })
	}
}

func testUnterminatedLineAfterAShortWait(t *testing.T, reader func(*os.File) io.Reader) {
	w, path := newTestLog(t, 0, 1)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	done := make(chan error, 1)
	go func() { done <- CopyStreams(w, reader(pr), nil) }()
	fmt.Fprint(pw, "line\nName: ")
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), `"log":"Name: "`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the prompt was not written while the pipe stays open: %s", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprint(pw, "bob\n")
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.Close()
	var got []string
	for _, l := range readJSONLines(t, path) {
		got = append(got, l.Log)
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{"line\n", "Name: ", "bob\n"}) {
		t.Fatalf("entries %q", got)
	}
}
