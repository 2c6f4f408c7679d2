package ctrd

import (
	"github.com/stackdev/stack/engine/jsonfile"

	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestHoldConfigRoundTrip(t *testing.T) {
	want := HoldConfig{Dir: "/var/lib/stack/containers/abc", Log: jsonfile.Config{Path: "/var/lib/stack/containers/abc/abc-json.log", MaxSize: 1 << 20, MaxFiles: 3}, Discard: true}
	got, err := decodeHoldConfig(want.encode())
	if err != nil || got != want {
		t.Fatalf("decode(encode(%+v)) = %+v, %v", want, got, err)
	}
	rel := want
	rel.Dir = "containers/abc"
	if _, err := decodeHoldConfig(rel.encode()); err == nil || !strings.Contains(err.Error(), "not absolute") {
		t.Errorf("relative dir: err = %v, want 'not absolute'", err)
	}
}

// startTestHolder runs the holder's loop in-process on a fresh container
// directory; the returned channel yields run's result.
func startTestHolder(t *testing.T, discard bool) (HoldConfig, <-chan error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ctr")
	if err := os.Mkdir(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	cfg := HoldConfig{Dir: dir, Log: jsonfile.Config{Path: filepath.Join(dir, "ctr-json.log"), MaxFiles: 1}, Discard: discard}
	h, err := openHolder(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	done, exited := make(chan error, 1), make(chan struct{})
	go func() { done <- h.run(waitRemoved); close(exited) }()
	t.Cleanup(func() { _ = os.RemoveAll(dir); <-exited })
	return cfg, done
}

func TestHolderStdinNeverReachesEOF(t *testing.T) {
	cfg, _ := startTestHolder(t, false)
	// The shim opens the stdin FIFO like this; with no writer a read
	// would return 0 (EOF) at once.
	fd, err := unix.Open(cfg.fifo(stdinFIFO), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, make([]byte, 16))
	if !errors.Is(err, unix.EAGAIN) {
		t.Errorf("read of stdin = %d, %v; want EAGAIN (a writer holds it open, nothing written)", n, err)
	}
}

func TestHolderLogsOutputAcrossReopens(t *testing.T) {
	cfg, _ := startTestHolder(t, false)
	// Two tasks in a row: each opens the FIFOs, writes and closes them.
	for _, word := range []string{"first", "second"} {
		writeFIFO(t, cfg.fifo(stdoutFIFO), word+"\n")
	}
	writeFIFO(t, cfg.fifo(stderrFIFO), "prompt ")
	want := []string{
		`{"log":"first\n","stream":"stdout"`,
		`{"log":"second\n","stream":"stdout"`,
		`{"log":"prompt ","stream":"stderr"`, // an unterminated line, after partialWait
	}
	waitForFile(t, cfg.Log.Path, func(log string) bool {
		for _, w := range want {
			if !strings.Contains(log, w) {
				return false
			}
		}
		return true
	})
}

func TestHolderTakesTheLockAndExitsWhenTheDirectoryGoes(t *testing.T) {
	cfg, done := startTestHolder(t, true)
	if _, err := openHolder(cfg, nil); err == nil || !strings.Contains(err.Error(), "another io holder") {
		t.Errorf("second holder on the same directory: err = %v, want 'another io holder'", err)
	}
	if err := EnsureHolder(cfg); err != nil {
		t.Errorf("EnsureHolder with a holder running: %v, want nil (nothing to start)", err)
	}
	if err := os.Remove(cfg.fifo(stdinFIFO)); err != nil {
		t.Fatal(err)
	}
	if err := EnsureHolder(cfg); err == nil || !strings.Contains(err.Error(), "kill that process") {
		t.Errorf("EnsureHolder with the stdin FIFO gone: err = %v, want advice", err)
	}
	writeFIFO(t, cfg.fifo(stdoutFIFO), "dropped\n")
	start := time.Now()
	if err := os.RemoveAll(cfg.Dir); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v", err)
		}
	case <-time.After(3 * holdPoll):
		t.Fatal("the holder still runs after its directory was removed")
	}
	if d := time.Since(start); d > holdPoll/2 {
		t.Errorf("the holder took %v to notice the removal; inotify should wake it at once", d)
	}
	if _, err := os.Stat(cfg.Log.Path); !os.IsNotExist(err) {
		t.Errorf("discarding holder wrote a log: %v", err)
	}
}

func TestWaitHolderReady(t *testing.T) {
	for _, tc := range []struct {
		write   string
		wantErr string
	}{
		{"\x01", ""},
		{"", "exited before it was ready"},
		{"open x: permission denied", "io holder: open x: permission denied"},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.WriteString(tc.write)
		w.Close()
		err = waitHolderReady(r)
		r.Close()
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("ready pipe %q: err = %v, want %q", tc.write, err, tc.wantErr)
		}
	}
}

// writeFIFO opens the FIFO for writing as the shim does, writes s, closes.
func writeFIFO(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatalf("open %s for writing (no reader?): %v", path, err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func waitForFile(t *testing.T, path string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if ok(string(data)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s:\n%s", path, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
