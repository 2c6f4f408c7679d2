package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/stackdev/stack/daemon"
	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

// forwardedName is the one name the test upstream knows; forwardedIP is
// its answer (TEST-NET-1: never contacted, only compared).
const (
	forwardedName = "forwarded.stack-test."
	forwardedIP   = "192.0.2.77"
)

// dnsEnv is a project whose daemon has its own socket and forwards to an
// upstream resolver the test runs on 127.0.0.1 (never the host's).
type dnsEnv struct {
	*projectEnv
	socket   string
	upstream *testUpstream
}

func newDNSEnv(t *testing.T, composeYAML string) *dnsEnv {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "dns-") // unix socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	up := startTestUpstream(t)
	e := &dnsEnv{socket: filepath.Join(dir, "d.sock"), upstream: up}
	t.Setenv("STACK_DAEMON_SOCKET", e.socket)
	t.Setenv("STACK_DNS_UPSTREAMS", up.addr.String())
	e.projectEnv = newProjectEnv(t, composeYAML)
	t.Cleanup(e.stopDaemon) // runs before the project's down: cleanups are LIFO
	return e
}

// status asks the daemon through the CLI, as a user would.
func (e *dnsEnv) status() daemon.Status {
	e.t.Helper()
	out := e.mustRun("daemon", "status", "--format", "json")
	var st daemon.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("daemon status --format json: %v\n%s", err, out)
	}
	return st
}

// stopDaemon ends the daemon the test's commands started, by its PID.
func (e *dnsEnv) stopDaemon() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := daemon.Dial(e.socket).Status(ctx)
	if err != nil || st.PID <= 0 {
		return
	}
	_ = syscall.Kill(st.PID, syscall.SIGTERM)
	waitGone(st.PID, 5*time.Second)
}

func waitGone(pid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// container returns the observed container called name.
func (e *dnsEnv) container(st engine.State, name string) engine.Container {
	e.t.Helper()
	for _, c := range st.Containers {
		if c.Name == name {
			return c
		}
	}
	e.t.Fatalf("container %s not observed", name)
	return engine.Container{}
}

// gateway returns the gateway address of network.
func gateway(t *testing.T, st engine.State, network string) string {
	t.Helper()
	for _, n := range st.Networks {
		if n.Name == network {
			return n.Gateway
		}
	}
	t.Fatalf("network %s not observed", network)
	return ""
}

// execResult is one process run inside a container.
type dnsExecResult struct {
	stdout, stderr string
	code           int
}

// exec runs args inside the running container id of namespace, with
// separate buffers for stdout and stderr.
func execIn(t *testing.T, namespace, id string, args ...string) dnsExecResult {
	t.Helper()
	client, err := containerd.New(env.socket, containerd.WithDefaultNamespace(namespace))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), namespace), 30*time.Second)
	defer cancel()
	ctr, err := client.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pspec := *spec.Process
	pspec.Args, pspec.Terminal = args, false
	var stdout, stderr syncBuffer
	execID := fmt.Sprintf("dns%d", time.Now().UnixNano())
	p, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr), cio.WithFIFODir(t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Delete(context.WithoutCancel(ctx))
	statusC, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st := <-statusC
	p.IO().Wait()
	return dnsExecResult{stdout: stdout.String(), stderr: stderr.String(), code: int(st.ExitCode())}
}

var nslookupAddr = regexp.MustCompile(`(?m)^Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)\s*$`)

// nslookup resolves name with busybox inside container id and returns the
// IPv4 addresses answered (the server's own line, ip:53, is not one), sorted.
func nslookup(t *testing.T, namespace, id, name string) ([]string, dnsExecResult) {
	t.Helper()
	r := execIn(t, namespace, id, "nslookup", name)
	var out []string
	for _, m := range nslookupAddr.FindAllStringSubmatch(r.stdout, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out, r
}

// testUpstream is a DNS resolver on 127.0.0.1 that knows forwardedName
// and answers NXDOMAIN for everything else, counting queries.
type testUpstream struct {
	addr    netip.AddrPort
	queries atomic.Int64
}

func startTestUpstream(t *testing.T) *testUpstream {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &testUpstream{addr: pc.LocalAddr().(*net.UDPAddr).AddrPort()}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			u.queries.Add(1)
			if resp, ok := upstreamAnswer(buf[:n]); ok {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	return u
}

func upstreamAnswer(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	known := strings.EqualFold(q.Name.String(), forwardedName)
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	_ = b.StartQuestions()
	_ = b.Question(q)
	if known && q.Type == dnsmessage.TypeA {
		_ = b.StartAnswers()
		ip := netip.MustParseAddr(forwardedIP).As4()
		_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: ip})
	}
	out, err := b.Finish()
	return out, err == nil
}

// askHost sends one query from the host to server (a stack gateway, :53)
// and returns the rcode and the A/AAAA addresses (or PTR names) answered. The host's
// source address on that bridge is the gateway, inside the allowed subnet.
func askHost(server, name string, qtype dnsmessage.Type) (dnsmessage.RCode, []string, error) {
	return askHostWithin(server, name, qtype, 500*time.Millisecond)
}

func askHostWithin(server, name string, qtype dnsmessage.Type, limit time.Duration) (dnsmessage.RCode, []string, error) {
	q := dnsmessage.Question{Name: dnsmessage.MustNewName(dnsName(name)), Type: qtype, Class: dnsmessage.ClassINET}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: uint16(time.Now().UnixNano()), RecursionDesired: true})
	_ = b.StartQuestions()
	_ = b.Question(q)
	msg, err := b.Finish()
	if err != nil {
		return 0, nil, err
	}
	conn, err := net.Dial("udp", net.JoinHostPort(server, "53"))
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(limit))
	if _, err := conn.Write(msg); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		return 0, nil, err
	}
	var m dnsmessage.Message
	if err := m.Unpack(buf[:n]); err != nil {
		return 0, nil, err
	}
	var addrs []string
	for _, rr := range m.Answers {
		switch r := rr.Body.(type) {
		case *dnsmessage.AResource:
			addrs = append(addrs, netip.AddrFrom4(r.A).String())
		case *dnsmessage.AAAAResource:
			addrs = append(addrs, netip.AddrFrom16(r.AAAA).String())
		case *dnsmessage.PTRResource:
			addrs = append(addrs, r.PTR.String())
		}
	}
	slices.Sort(addrs)
	return m.RCode, addrs, nil
}

func dnsName(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// daemonSockets53 lists the local addresses pid listens on at port 53
// (UDP and TCP), from ss.
func daemonSockets53(t *testing.T, pid int) []string {
	t.Helper()
	out, err := exec.Command("ss", "-Hlnuptn").Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	var addrs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.Contains(line, fmt.Sprintf("pid=%d,", pid)) {
			continue
		}
		if strings.HasSuffix(f[4], ":53") {
			addrs = append(addrs, f[0]+" "+f[4])
		}
	}
	slices.Sort(addrs)
	return addrs
}

// stateAll observes every project of the environment's namespace.
func (e *dnsEnv) stateAll() engine.State {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ctrd.New(ctx, ctrd.Options{Address: env.socket, Namespace: e.namespace, StateDir: e.stateDir})
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Observe(ctx, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}
