package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stackdev/stack/engine/ctrd"
)

// env is what every test shares: the built binary, the containerd socket and
// the example image archives.
var env struct {
	socket    string
	stackBin  string
	imagesDir string // busybox.oci.tar, hello.oci.tar
	workDir   string
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	env.socket = os.Getenv("STACK_TEST_CONTAINERD")
	if env.socket == "" {
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "integration: CI=true but STACK_TEST_CONTAINERD is not set; refusing to skip")
			return 1
		}
		fmt.Fprintln(os.Stderr, "integration: STACK_TEST_CONTAINERD not set; skipping (make test sets it)")
		return 0
	}
	if err := ctrd.Probe(context.Background(), env.socket, 5*time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "integration: STACK_TEST_CONTAINERD=%s is unusable: %v\n", env.socket, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "stack-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	env.workDir = dir
	if err := buildTools(dir); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	return m.Run()
}

// buildTools compiles the stack binary and the example image archives, unless
// STACK_TEST_BIN / STACK_TEST_IMAGES point at ones already built.
func buildTools(dir string) error {
	env.stackBin = os.Getenv("STACK_TEST_BIN")
	if env.stackBin == "" {
		env.stackBin = filepath.Join(dir, "stack")
		if out, err := exec.Command("go", "build", "-o", env.stackBin, "../cmd/stack").CombinedOutput(); err != nil {
			return fmt.Errorf("build stack: %v\n%s", err, out)
		}
	}
	if abs, err := filepath.Abs(env.stackBin); err == nil {
		env.stackBin = abs
	}
	// Tasks started by the in-process driver tests log through stack too.
	os.Setenv(ctrd.LogBinaryEnv, env.stackBin)
	env.imagesDir = os.Getenv("STACK_TEST_IMAGES")
	if env.imagesDir == "" {
		env.imagesDir = filepath.Join(dir, "images")
		if out, err := exec.Command("go", "run", "../examples/images/build", "-o", env.imagesDir).CombinedOutput(); err != nil {
			return fmt.Errorf("build example images: %v\n%s", err, out)
		}
	}
	return nil
}

// stackEnv is one isolated stack installation: its own containerd namespace
// and state directory, removed when the test ends.
type stackEnv struct {
	t         *testing.T
	namespace string
	stateDir  string
	dir       string // a scratch directory for compose files
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// newStackEnv gives the test its own namespace, derived from its name.
func newStackEnv(t *testing.T) *stackEnv {
	t.Helper()
	ns := strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(ns) > 40 {
		ns = strings.TrimRight(ns[:40], "-") // a name may not end in a separator
	}
	ns = "it-" + ns
	e := &stackEnv{t: t, namespace: ns, stateDir: t.TempDir(), dir: t.TempDir()}
	return e
}

// result is one finished stack invocation.
type result struct {
	stdout, stderr string
	code           int
}

// run executes the stack binary with the environment's settings.
func (e *stackEnv) run(args ...string) result {
	e.t.Helper()
	return e.runIn(e.dir, nil, args...)
}

// runIn executes the stack binary in dir with extra environment and stdin.
func (e *stackEnv) runIn(dir string, stdin []byte, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.stackBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"STACK_CONTAINERD_ADDRESS="+env.socket,
		"STACK_NAMESPACE="+e.namespace,
		"STACK_STATE_DIR="+e.stateDir,
	)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if exit, ok := err.(*exec.ExitError); ok {
		r.code = exit.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run stack %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustRun runs stack and fails the test unless it exits 0.
func (e *stackEnv) mustRun(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("stack %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// loadExampleImages loads busybox and hello into the test's namespace.
func (e *stackEnv) loadExampleImages() {
	e.t.Helper()
	for _, name := range []string{"busybox.oci.tar", "hello.oci.tar"} {
		e.mustRun("image", "load", "-i", filepath.Join(env.imagesDir, name))
	}
}
