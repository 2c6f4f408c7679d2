package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

const busybox = "docker.io/library/busybox:latest"

// driverEnv is a ctrd.Client on its own namespace and state directory, with
// busybox loaded, and a raw containerd client to look inside.
type driverEnv struct {
	t        *testing.T
	ctx      context.Context
	d        *ctrd.Client
	raw      *containerd.Client
	ns       string
	stateDir string
	project  string
}

func newDriverEnv(t *testing.T) *driverEnv {
	t.Helper()
	e := newStackEnv(t)
	cleanupNamespace(t, e.namespace)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	d, err := ctrd.New(ctx, ctrd.Options{Address: env.socket, Namespace: e.namespace, StateDir: e.stateDir})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := containerd.New(env.socket, containerd.WithDefaultNamespace(e.namespace))
	if err != nil {
		t.Fatal(err)
	}
	de := &driverEnv{t: t, ctx: namespaces.WithNamespace(ctx, e.namespace), d: d, raw: raw, ns: e.namespace, stateDir: e.stateDir, project: "p" + e.namespace[len(e.namespace)-6:]}
	// Runs before cleanupNamespace (cleanups are LIFO): remove through the
	// driver so networks and netns go too.
	t.Cleanup(func() { de.removeAll(); d.Close(); raw.Close() })
	f, err := os.Open(filepath.Join(env.imagesDir, "busybox.oci.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := d.Load(ctx, f); err != nil {
		t.Fatal(err)
	}
	return de
}

// removeAll removes every container, network and volume of the env.
func (e *driverEnv) removeAll() {
	ctx := context.WithoutCancel(e.ctx)
	st, err := e.d.Observe(ctx, "")
	if err != nil {
		e.t.Logf("cleanup observe: %v", err)
		return
	}
	for _, c := range st.Containers {
		if err := e.d.RemoveContainer(ctx, c.ID); err != nil {
			e.t.Logf("cleanup: %v", err)
		}
	}
	for _, n := range st.Networks {
		if err := e.d.RemoveNetwork(ctx, n.Name); err != nil {
			e.t.Logf("cleanup: %v", err)
		}
	}
	for _, v := range st.Volumes {
		if err := e.d.RemoveVolume(ctx, v.Name); err != nil {
			e.t.Logf("cleanup: %v", err)
		}
	}
}

// network creates a network of the env's project and returns its record.
func (e *driverEnv) network(key string, mod ...func(*engine.NetworkSpec)) engine.Network {
	e.t.Helper()
	spec := engine.NetworkSpec{Name: e.project + "_" + key, Project: e.project, Key: key, Driver: "bridge"}
	for _, m := range mod {
		m(&spec)
	}
	if err := e.d.CreateNetwork(e.ctx, spec); err != nil {
		e.t.Fatal(err)
	}
	return e.observeNetwork(spec.Name)
}

// earlierNetwork creates a network as an earlier stack version left it: its
// record without subnetRules, and without the rules for its subnet, so
// that its containers get the CNI bridge plugin's masquerade and the
// firewall plugin per container.
func (e *driverEnv) earlierNetwork(key string) engine.Network {
	e.t.Helper()
	n := e.network(key)
	path := filepath.Join(e.stateDir, "networks", n.Name+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		e.t.Fatal(err)
	}
	if rec["subnetRules"] != true {
		e.t.Fatalf("a new network's record has no subnetRules: %s", b)
	}
	delete(rec, "subnetRules")
	if b, err = json.Marshal(rec); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		e.t.Fatal(err)
	}
	deleteHostRules(e.t, func(rule string) bool {
		return strings.Contains(rule, "-s "+n.Subnet+" ") || strings.Contains(rule, "-d "+n.Subnet+" ")
	})
	return n
}

func (e *driverEnv) observeNetwork(name string) engine.Network {
	e.t.Helper()
	st, err := e.d.Observe(e.ctx, e.project)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, n := range st.Networks {
		if n.Name == name {
			return n
		}
	}
	e.t.Fatalf("network %s not observed", name)
	return engine.Network{}
}

// spec is a busybox container spec that sleeps, attached to nets.
func (e *driverEnv) spec(service string, nets ...string) engine.ContainerSpec {
	s := engine.ContainerSpec{
		Name: e.project + "-" + service + "-1", Project: e.project, Service: service, Number: 1,
		Image: busybox, ConfigHash: "hash-" + service,
		// sleep as PID 1 ignores SIGTERM; keep removal quick.
		Process: engine.Process{Command: []string{"sleep", "3600"}, StopGracePeriod: 200 * time.Millisecond},
	}
	for _, n := range nets {
		s.Network.Networks = append(s.Network.Networks, engine.NetworkAttachment{Network: n})
	}
	return s
}

// run creates and starts a container and returns its observed state.
func (e *driverEnv) run(spec engine.ContainerSpec) engine.Container {
	e.t.Helper()
	id, err := e.d.CreateContainer(e.ctx, spec)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.d.StartContainer(e.ctx, id); err != nil {
		e.t.Fatal(err)
	}
	c := e.container(id)
	if c.Status != engine.StatusRunning {
		e.t.Fatalf("container %s is %s after start, want running", spec.Name, c.Status)
	}
	return c
}

// container observes one container by ID.
func (e *driverEnv) container(id string) engine.Container {
	e.t.Helper()
	st, err := e.d.Observe(e.ctx, e.project)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range st.Containers {
		if c.ID == id {
			return c
		}
	}
	e.t.Fatalf("container %s not observed", id)
	return engine.Container{}
}

// syncBuffer is a writer safe for cio's two copy goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// exec runs args in the running container and returns stdout+stderr and the
// exit code.
func (e *driverEnv) exec(id string, args ...string) (string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	ctr, err := e.raw.LoadContainer(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	pspec := *spec.Process
	pspec.Args = args
	pspec.Terminal = false
	var out syncBuffer
	execID := fmt.Sprintf("x%d", time.Now().UnixNano())
	p, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(cio.WithStreams(nil, &out, &out), cio.WithFIFODir(e.t.TempDir())))
	if err != nil {
		e.t.Fatal(err)
	}
	defer p.Delete(context.WithoutCancel(ctx))
	statusC, err := p.Wait(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	st := <-statusC
	p.IO().Wait()
	return out.String(), int(st.ExitCode())
}

func (e *driverEnv) mustExec(id string, args ...string) string {
	e.t.Helper()
	out, code := e.exec(id, args...)
	if code != 0 {
		e.t.Fatalf("exec %v: exit %d: %s", args, code, out)
	}
	return out
}

// assertGone checks that nothing of container id remains on the host: no
// container, task, snapshot, netns, veth on the network's bridge, IP lease,
// iptables rule naming its ID or IP, mount or state directory.
func (e *driverEnv) assertGone(id, ip string, nets ...engine.Network) {
	e.t.Helper()
	if _, err := e.raw.ContainerService().Get(e.ctx, id); !errdefs.IsNotFound(err) {
		e.t.Errorf("container %s still exists (err %v)", id, err)
	}
	if _, err := e.raw.TaskService().Get(e.ctx, taskGet(id)); err == nil {
		e.t.Errorf("task %s still exists", id)
	}
	for _, sn := range []string{"overlayfs", "native"} {
		if _, err := e.raw.SnapshotService(sn).Stat(e.ctx, id); err == nil {
			e.t.Errorf("snapshot %s still exists in %s", id, sn)
		}
	}
	if _, err := os.Stat("/var/run/netns/stack-" + id[:24]); err == nil {
		e.t.Errorf("netns of %s still exists", id)
	}
	for _, n := range nets {
		if brif, _ := os.ReadDir("/sys/class/net/" + n.Bridge + "/brif"); len(brif) > 0 {
			e.t.Errorf("bridge %s still has ports %v", n.Bridge, brif)
		}
		if ip != "" {
			if _, err := os.Stat(filepath.Join(e.stateDir, "networks", "ipam", n.Name, ip)); err == nil {
				e.t.Errorf("IP lease %s on %s still exists", ip, n.Name)
			}
		}
	}
	rules := iptablesSave(e.t)
	for _, s := range []string{id, ip + "/", ip + " "} {
		if s != "/" && s != " " && strings.Contains(rules, s) {
			e.t.Errorf("an iptables rule still names %q:\n%s", s, grepLines(rules, s))
		}
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mi, []byte(id)) {
		e.t.Errorf("a mount still names %s:\n%s", id, grepLines(string(mi), id))
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, "containers", id)); err == nil {
		e.t.Errorf("state directory of %s still exists", id)
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, "locks", "containers", id+".lock")); err == nil {
		e.t.Errorf("lock file of %s still exists", id)
	}
}

func taskGet(id string) *tasks.GetRequest { return &tasks.GetRequest{ContainerID: id} }

func iptablesSave(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	return string(out)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func containerIP(t *testing.T, ipAddrLine string) string {
	t.Helper()
	f := strings.Fields(ipAddrLine)
	for i, w := range f {
		if w == "inet" && i+1 < len(f) {
			return strings.Split(f[i+1], "/")[0]
		}
	}
	t.Fatalf("no inet address in %q", ipAddrLine)
	return ""
}

func waitForLog(t *testing.T, path string, want []string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(string(data), w)
		}
		if !missing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s = %q, want %q", path, data, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
