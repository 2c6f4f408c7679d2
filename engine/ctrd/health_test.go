package ctrd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
)

func TestHealthArgvRunsCMDAsIsAndCMDShellThroughSh(t *testing.T) {
	cases := []struct {
		test []string
		want []string
	}{
		{[]string{"CMD", "wget", "-qO-", "http://localhost:8080/healthz"}, []string{"wget", "-qO-", "http://localhost:8080/healthz"}},
		{[]string{"CMD-SHELL", "test -f /ok"}, []string{"/bin/sh", "-c", "test -f /ok"}},
		{[]string{"test", "-f", "/ok"}, []string{"/bin/sh", "-c", "test -f /ok"}},
	}
	for _, c := range cases {
		got, err := HealthArgv(c.test)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("HealthArgv(%q) = %q, %v; want %q", c.test, got, err, c.want)
		}
	}
	for _, bad := range [][]string{nil, {"CMD"}, {"NONE"}} {
		if _, err := HealthArgv(bad); err == nil {
			t.Errorf("HealthArgv(%q) succeeded; want an error", bad)
		}
	}
}

func TestActiveHealthcheckIsNilForNoneAndFillsDockerDefaults(t *testing.T) {
	if ActiveHealthcheck(nil) != nil || ActiveHealthcheck(&engine.Healthcheck{Test: []string{"NONE"}}) != nil {
		t.Fatal("no healthcheck or NONE must be inactive")
	}
	hc := ActiveHealthcheck(&engine.Healthcheck{Test: []string{"CMD", "true"}})
	if hc.Interval != 30*time.Second || hc.Timeout != 30*time.Second || hc.Retries != 3 || hc.StartInterval != 5*time.Second {
		t.Fatalf("defaults = %+v", hc)
	}
}

func TestRecordFollowsDockerTransitions(t *testing.T) {
	ok, fail := HealthProbe{ExitCode: 0}, HealthProbe{ExitCode: 1, Output: "down"}
	var hs HealthState
	hs.Record(fail, 2, true)
	if hs.Status != HealthStarting || hs.FailingStreak != 0 {
		t.Fatalf("a failure in the start period must not count: %+v", hs)
	}
	hs.Record(ok, 2, true)
	if hs.Status != HealthHealthy {
		t.Fatalf("a success makes it healthy: %+v", hs)
	}
	hs.Record(fail, 2, true)
	if hs.Status != HealthHealthy || hs.FailingStreak != 1 {
		t.Fatalf("once healthy, failures count even in the start period: %+v", hs)
	}
	hs.Record(fail, 2, false)
	if hs.Status != HealthUnhealthy || hs.FailingStreak != 2 {
		t.Fatalf("retries failures in a row make it unhealthy: %+v", hs)
	}
	for range 10 {
		hs.Record(fail, 2, false)
	}
	if len(hs.Log) != healthLogLen {
		t.Fatalf("log keeps %d probes, got %d", healthLogLen, len(hs.Log))
	}
}

func TestProbeOutputKeepsTheFirstBytesUntilTheWritersClose(t *testing.T) {
	c := testFIFOClient(t)
	f, path, err := c.openProbeFIFO("exec-test")
	if err != nil {
		t.Fatal(err)
	}
	defer closeProbeFIFO(f, path)
	// The shim opens the FIFO twice, for stdout and stderr.
	out, err1 := os.OpenFile(path, os.O_WRONLY, 0)
	errw, err2 := os.OpenFile(path, os.O_WRONLY, 0)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = out.WriteString("abc")
		_, _ = errw.WriteString("def")
		_, _ = out.Write(bytes.Repeat([]byte("x"), 256<<10)) // more than a pipe holds: drained, dropped
		out.Close()
		errw.Close()
	}()
	got, err := readProbeOutput(context.Background(), f, 8)
	if err != nil || string(got) != "abcdefxx" {
		t.Fatalf("readProbeOutput = %q, %v; want the first 8 bytes of both writers", got, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the FIFO is gone before its probe ends: %v", err)
	}
	closeProbeFIFO(f, path)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("closeProbeFIFO left %s: %v", path, err)
	}
}

func TestProbeOutputEndsWithTheContextWhileAWriterStaysOpen(t *testing.T) {
	c := testFIFOClient(t)
	f, path, err := c.openProbeFIFO("exec-test")
	if err != nil {
		t.Fatal(err)
	}
	defer closeProbeFIFO(f, path)
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, _ = w.WriteString("partial")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	got, err := readProbeOutput(ctx, f, healthOutputMax)
	if !errors.Is(err, context.DeadlineExceeded) || string(got) != "partial" {
		t.Fatalf("readProbeOutput = %q, %v; want the output so far and the deadline", got, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("readProbeOutput returned %s after the deadline", took)
	}
}

// testFIFOClient is a Client whose exec FIFOs go to a test directory.
func testFIFOClient(t *testing.T) *Client {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	c.fifoOnce.Do(func() { c.fifoDir = filepath.Join(t.TempDir(), "fifo") })
	return c
}

func TestObservedHealthIgnoresARecordOfAnEarlierTask(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	spec := engine.ContainerSpec{Health: &engine.Healthcheck{Test: []string{"CMD", "true"}}}
	started := time.Now().UTC().Truncate(time.Second)
	if got := c.observedHealth("x", spec, started); got != HealthStarting {
		t.Fatalf("no record: %q, want starting", got)
	}
	if err := c.SaveHealth("x", HealthState{Status: HealthHealthy, StartedAt: started.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if got := c.observedHealth("x", spec, started); got != HealthStarting {
		t.Fatalf("earlier task's record: %q, want starting", got)
	}
	if err := c.SaveHealth("x", HealthState{Status: HealthUnhealthy, StartedAt: started}); err != nil {
		t.Fatal(err)
	}
	if got := c.observedHealth("x", spec, started); got != HealthUnhealthy {
		t.Fatalf("current record: %q, want unhealthy", got)
	}
	if got := c.observedHealth("x", engine.ContainerSpec{}, started); got != "" {
		t.Fatalf("no healthcheck: %q, want empty", got)
	}
}
