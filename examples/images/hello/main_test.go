package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the binary helloBinary built, if any; TestMain removes it.
var binDir string

// helloBinary builds the server once for the tests that run it.
var helloBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "hello-test-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "hello")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func builtHello(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := helloBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// freePort asks the kernel for a loopback port that is free right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestTheBinaryServesOnPORTAndStopsCleanlyOnSIGTERM(t *testing.T) {
	bin := builtHello(t)
	port := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{fmt.Sprintf("PORT=%d", port), "GREETING=hi"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	logs := bufio.NewScanner(stderr)
	if !logs.Scan() || !strings.Contains(logs.Text(), fmt.Sprintf("listening on :%d", port)) {
		t.Fatalf("first log line = %q, want it to say it listens on :%d", logs.Text(), port)
	}

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /healthz = %d", resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for logs.Scan() {
		rest = append(rest, logs.Text())
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGTERM: %v (want exit 0); logs: %q", err, rest)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SIGTERM")
	}
	if got := strings.Join(rest, "\n"); !strings.Contains(got, "shutting down") || !strings.Contains(got, "stopped") {
		t.Errorf("logs after SIGTERM = %q, want shutting down and stopped", got)
	}
}

func TestAnInvalidPORTExitsWithAMessage(t *testing.T) {
	bin := builtHello(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{"PORT=http"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `PORT="http" is not a port number`) {
		t.Fatalf("PORT=http: err %v, output %q", err, out)
	}
}
