package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/stackdev/stack/engine"
)

// This file holds the helpers the service-key and network tests use to look
// inside a project's running containers: exec in a container found by name,
// its OCI spec, the engine spec stack stored on it, and its PID's /proc.

// keyBuf is a writer safe for cio's copy goroutines; each stream gets
// its own (containerd-notes, gotcha 3).
type keyBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *keyBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *keyBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// execResult is one finished exec inside a container.
type execResult struct {
	stdout, stderr string
	code           int
}

// raw opens a containerd client on the project's namespace.
func (p *projectEnv) raw() (*containerd.Client, context.Context, context.CancelFunc) {
	p.t.Helper()
	c, err := containerd.New(env.socket, containerd.WithDefaultNamespace(p.namespace))
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), p.namespace), 30*time.Second)
	return c, ctx, func() { cancel(); c.Close() }
}

// containerNamed observes the project and returns the container with the
// given name (<project>-<service>-<n> or its container_name).
func (p *projectEnv) containerNamed(name string) engine.Container {
	p.t.Helper()
	for _, c := range p.observe().Containers {
		if c.Name == name {
			return c
		}
	}
	p.t.Fatalf("no container named %s in project %s", name, p.project)
	return engine.Container{}
}

// name is the compose name of a service's replica n.
func (p *projectEnv) name(service string, n int) string {
	return fmt.Sprintf("%s-%s-%d", p.project, service, n)
}

// exec runs args in the running container called name, as the container's
// own process would run (same user, env, cwd), without a terminal.
func (p *projectEnv) exec(name string, args ...string) execResult {
	p.t.Helper()
	id := p.containerNamed(name).ID
	c, ctx, done := p.raw()
	defer done()
	ctr, err := c.LoadContainer(ctx, id)
	if err != nil {
		p.t.Fatal(err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		p.t.Fatalf("container %s has no task: %v", name, err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	pspec := *spec.Process
	pspec.Args, pspec.Terminal = args, false
	var stdout, stderr keyBuf
	fifos := p.t.TempDir()
	proc, err := task.Exec(ctx, fmt.Sprintf("k%d", time.Now().UnixNano()), &pspec,
		cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr), cio.WithFIFODir(fifos)))
	if err != nil {
		p.t.Fatalf("exec %v in %s: %v", args, name, err)
	}
	defer proc.Delete(context.WithoutCancel(ctx))
	statusC, err := proc.Wait(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := proc.Start(ctx); err != nil {
		p.t.Fatalf("exec %v in %s: %v", args, name, err)
	}
	var st containerd.ExitStatus
	select {
	case st = <-statusC:
	case <-ctx.Done():
		p.t.Fatalf("exec %v in %s: %v", args, name, ctx.Err())
	}
	proc.IO().Wait()
	return execResult{stdout: stdout.String(), stderr: stderr.String(), code: int(st.ExitCode())}
}

// sh runs a shell script in the container and returns its trimmed stdout; a
// non-zero exit fails the test.
func (p *projectEnv) sh(name, script string) string {
	p.t.Helper()
	r := p.exec(name, "sh", "-c", script)
	if r.code != 0 {
		p.t.Fatalf("in %s: sh -c %q: exit %d\nstdout: %s\nstderr: %s", name, script, r.code, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// ociSpec is the OCI runtime spec containerd holds for the container.
func (p *projectEnv) ociSpec(name string) *oci.Spec {
	p.t.Helper()
	id := p.containerNamed(name).ID
	c, ctx, done := p.raw()
	defer done()
	ctr, err := c.LoadContainer(ctx, id)
	if err != nil {
		p.t.Fatal(err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	return spec
}

// stored is the engine spec stack stored on the container, which start,
// the daemon and down read back.
func (p *projectEnv) stored(name string) engine.ContainerSpec {
	p.t.Helper()
	id := p.containerNamed(name).ID
	c, ctx, done := p.raw()
	defer done()
	info, err := c.ContainerService().Get(ctx, id)
	if err != nil {
		p.t.Fatal(err)
	}
	var spec engine.ContainerSpec
	for _, ext := range info.Extensions {
		if strings.Contains(ext.GetTypeUrl(), "engine.ContainerSpec") {
			if err := json.Unmarshal(ext.GetValue(), &spec); err != nil {
				p.t.Fatal(err)
			}
			return spec
		}
	}
	p.t.Fatalf("container %s carries no stored spec (extensions %v)", name, info.Extensions)
	return spec
}

// proc reads /proc/<pid>/<file> of the container's main process on the host.
func (p *projectEnv) proc(name, file string) string {
	p.t.Helper()
	c := p.containerNamed(name)
	if c.Pid == 0 {
		p.t.Fatalf("container %s has no running process", name)
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", c.Pid, file))
	if err != nil {
		p.t.Fatal(err)
	}
	return string(data)
}

// statusField is one field of /proc/<pid>/status ("NoNewPrivs", "CapEff").
func (p *projectEnv) statusField(name, field string) string {
	p.t.Helper()
	for _, line := range strings.Split(p.proc(name, "status"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			return strings.TrimSpace(v)
		}
	}
	p.t.Fatalf("no %s in /proc/<pid>/status of %s", field, name)
	return ""
}

// cgroupFile reads a v1 controller file of the container's cgroup, found
// through /proc/<pid>/cgroup.
func (p *projectEnv) cgroupFile(name, controller, file string) string {
	p.t.Helper()
	for _, line := range strings.Split(p.proc(name, "cgroup"), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			if ctl == controller {
				data, err := os.ReadFile("/sys/fs/cgroup/" + parts[1] + parts[2] + "/" + file)
				if err != nil {
					p.t.Fatal(err)
				}
				return strings.TrimSpace(string(data))
			}
		}
	}
	p.t.Fatalf("container %s is in no %s cgroup", name, controller)
	return ""
}

// fetch GETs a URL from the host with a bounded timeout.
func fetch(url string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}

// loopbackPort asks the kernel for a free loopback port of the protocol.
func loopbackPort(t *testing.T, proto string) int {
	t.Helper()
	if proto == "udp" {
		l, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eventually retries f until it succeeds or the deadline passes, and
// returns its last error.
func eventually(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// trimmedLines is the set of lines of s, trimmed.
func trimmedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// fetchFromContainer GETs http://127.0.0.1:port/ inside the container,
// retrying while the server starts.
func fetchFromContainer(p *projectEnv, name string, port int) (string, error) {
	p.t.Helper()
	return fetchFromContainerURL(p, name, fmt.Sprintf("http://127.0.0.1:%d/", port))
}

// fetchFromContainerURL GETs url with wget inside the container, retrying
// for up to 10 seconds while the server starts.
func fetchFromContainerURL(p *projectEnv, name, url string) (string, error) {
	p.t.Helper()
	var body string
	err := eventually(10*time.Second, func() error {
		r := p.exec(name, "sh", "-c", "timeout 5 wget -qO- "+url)
		body = r.stdout
		if r.code != 0 {
			return fmt.Errorf("wget in %s: exit %d: %s", name, r.code, r.stderr)
		}
		return nil
	})
	return body, err
}

func mustReadlink(t *testing.T, path string) string {
	t.Helper()
	s, err := os.Readlink(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

// networkNamed observes the project's network with the given full name.
func networkNamed(t *testing.T, p *projectEnv, name string) engine.Network {
	t.Helper()
	for _, n := range p.observe().Networks {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("network %s not observed", name)
	return engine.Network{}
}

// up brings the project up and checks that it converged: a plan right
// after finds nothing to do, so no key makes every run recreate.
func (p *projectEnv) up() {
	p.t.Helper()
	p.mustRun("up", "-d")
	if r := p.run("plan", "--detailed-exitcode"); r.code != 0 {
		p.t.Errorf("plan right after up: exit %d, want 0 (nothing to do)\n%s%s", r.code, r.stdout, r.stderr)
	}
}
