package integration

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/stackdev/stack/daemon"
)

var pairCompose = `
services:
  api:
    image: busybox
    command: ` + sleeper + `
  client:
    image: busybox
    command: ` + sleeper + `
`

// waitAnswer asks server for name from the host until the answer has want
// addresses, and returns when it did.
func waitAnswer(t *testing.T, server, name string, want int, limit time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		rcode, addrs, err := askHost(server, name, dnsmessage.TypeA)
		if err == nil && rcode == dnsmessage.RCodeSuccess && len(addrs) == want {
			return time.Now()
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %d addresses for %s within %s", server, want, name, limit)
	return time.Time{}
}

// The daemon keeps nothing it cannot rebuild: killed with -9, the next
// stack command starts it again and the same names answer within a second.
func TestDaemonKilledIsBackOnTheNextCommandAndAnswersAsBefore(t *testing.T) {
	e := newDNSEnv(t, pairCompose)
	e.mustRun("up", "-d")
	st := e.observe()
	def := e.project + "_default"
	gw := gateway(t, st, def)
	apiIP := e.container(st, e.project+"-api-1").Addresses[def]
	before := e.status()

	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(before.PID, 5*time.Second)
	if _, _, err := askHost(gw, "api", dnsmessage.TypeA); err == nil {
		t.Fatal("something still answers on the gateway after the daemon was killed")
	}

	// Any command that talks to containerd brings it back, not only up.
	start := time.Now()
	r := e.run("ps")
	if r.code != 0 || !strings.Contains(r.stderr, "stack daemon was not running: started it on "+e.socket) {
		t.Fatalf("ps after kill -9: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	answered := waitAnswer(t, gw, "api", 1, 5*time.Second)
	took := answered.Sub(start)
	t.Logf("kill -9, then `stack ps`: names answer again %s after the command started", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("names answered %s after the restart, want within 1s", took)
	}
	_, addrs, _ := askHost(gw, "api", dnsmessage.TypeA)
	if !slices.Equal(addrs, []string{apiIP}) {
		t.Errorf("api after restart = %v, want [%s]", addrs, apiIP)
	}
	after := e.status()
	if after.PID == before.PID || len(after.Networks) != len(before.Networks) {
		t.Errorf("restarted daemon: pid %d (before %d), networks %+v (before %+v)", after.PID, before.PID, after.Networks, before.Networks)
	}
}

// A container started while the daemon runs is answered within 100 ms of
// containerd's task-start event, and one killed by hand leaves the answers
// as soon as its task exits: the daemon follows events, debounces, and
// observes once.
func TestDaemonAnswersANewContainerSoonAfterItsTaskStarts(t *testing.T) {
	e := newDNSEnv(t, pairCompose)
	e.mustRun("up", "-d")
	st := e.observe()
	def := e.project + "_default"
	gw := gateway(t, st, def)

	client, err := containerd.New(env.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), e.namespace), 2*time.Minute)
	defer cancel()
	events, errs := client.Subscribe(ctx, `namespace==`+e.namespace+`,topic=="/tasks/start"`)

	upDone := make(chan result, 1)
	go func() { upDone <- e.run("up", "-d", "--scale", "api=2") }()
	var started time.Time
	select {
	case ev := <-events:
		started = ev.Timestamp
	case err := <-errs:
		t.Fatalf("containerd events: %v", err)
	case r := <-upDone:
		t.Fatalf("up finished before any task started: exit %d\n%s", r.code, r.stderr)
	}
	answered := waitAnswer(t, gw, "api", 2, 10*time.Second)
	latency := answered.Sub(started)
	t.Logf("task-start event to first answer with the new replica: %s (daemon's own figure: %s)",
		latency.Round(100*time.Microsecond), e.daemonLatency())
	if latency > 500*time.Millisecond {
		t.Errorf("the new replica was answered %s after its task started; target 100ms, limit 500ms", latency)
	}
	if r := <-upDone; r.code != 0 {
		t.Fatalf("up --scale api=2: exit %d\n%s", r.code, r.stderr)
	}

	// A replica killed by hand, behind stack's back, leaves the answers as
	// soon as its task exits.
	exits, exitErrs := client.Subscribe(ctx, `namespace==`+e.namespace+`,topic=="/tasks/exit"`)
	victim := e.container(e.observe(), e.project+"-api-2")
	ctr, err := client.LoadContainer(ctx, victim.ID)
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var exited time.Time
	select {
	case ev := <-exits:
		exited = ev.Timestamp
	case err := <-exitErrs:
		t.Fatalf("containerd events: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no task exit event after SIGKILL")
	}
	gone := waitAnswer(t, gw, "api", 1, 5*time.Second)
	t.Logf("task-exit event (kill -9 by hand) to the answers without it: %s", gone.Sub(exited).Round(100*time.Microsecond))
	if d := gone.Sub(exited); d > 500*time.Millisecond {
		t.Errorf("a killed replica stayed in the answers %s after its exit; target 100ms, limit 500ms", d)
	}
}

func (e *dnsEnv) daemonLatency() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := daemon.Dial(e.socket).Status(ctx)
	if err != nil {
		return err.Error()
	}
	return "last " + st.Refresh.LastEventLatency.Round(100*time.Microsecond).String() + ", max " + st.Refresh.MaxEventLatency.Round(100*time.Microsecond).String()
}

// A recreated container gets a new address; the answers follow at once
// (TTL 2 s), so clients that honour the TTL reach the new one.
func TestDaemonAnswersTheNewAddressAfterARecreate(t *testing.T) {
	e := newDNSEnv(t, pairCompose)
	e.mustRun("up", "-d")
	def := e.project + "_default"
	st := e.observe()
	gw := gateway(t, st, def)
	old := e.container(st, e.project+"-api-1")

	e.writeCompose(strings.Replace(pairCompose, "  api:\n", "  api:\n    environment: {VERSION: \"2\"}\n", 1))
	e.mustRun("up", "-d")
	st = e.observe()
	renewed := e.container(st, e.project+"-api-1")
	if renewed.ID == old.ID {
		t.Fatalf("api was not recreated (id %s)", old.ID)
	}
	_, addrs, err := askHost(gw, "api", dnsmessage.TypeA)
	if err != nil || !slices.Equal(addrs, []string{renewed.Addresses[def]}) {
		t.Errorf("api after recreate = %v (%v), want only the new address %s (old %s)", addrs, err, renewed.Addresses[def], old.Addresses[def])
	}
	got, r := nslookup(t, e.namespace, e.container(st, e.project+"-client-1").ID, "api")
	if !slices.Equal(got, []string{renewed.Addresses[def]}) {
		t.Errorf("nslookup api from client after recreate = %v\n%s", got, r.stdout)
	}
}

// An upstream that does not answer costs its timeout once: later queries
// skip it and go to the next one at once, instead of waiting on it every
// time as Docker and aardvark-dns do.
func TestDNSDeadUpstreamCostsItsTimeoutOnce(t *testing.T) {
	e := newDNSEnv(t, pairCompose)
	silent, err := net.ListenPacket("udp", "127.0.0.1:0") // bound, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	t.Setenv("STACK_DNS_UPSTREAMS", silent.LocalAddr().String()+","+e.upstream.addr.String())
	e.mustRun("up", "-d")
	gw := gateway(t, e.observe(), e.project+"_default")

	var took []time.Duration
	for range 5 {
		start := time.Now()
		rcode, addrs, err := askHostWithin(gw, forwardedName, dnsmessage.TypeA, 5*time.Second)
		took = append(took, time.Since(start))
		if err != nil || rcode != dnsmessage.RCodeSuccess || !slices.Equal(addrs, []string{forwardedIP}) {
			t.Fatalf("forwarded query: rcode %v, %v, err %v", rcode, addrs, err)
		}
	}
	t.Logf("forwarded query times with a dead first upstream: %v", took)
	if took[0] > 2500*time.Millisecond {
		t.Errorf("first query took %s, want at most the 2s upstream timeout", took[0])
	}
	for i, d := range took[1:] {
		if d > 300*time.Millisecond {
			t.Errorf("query %d took %s: the dead upstream was waited on again", i+2, d)
		}
	}
}

// Run by a service manager, `stack daemon` stays in the foreground, serves
// the names at once, and stops cleanly on SIGTERM, removing its socket.
func TestDaemonInTheForegroundServesAtOnceAndStopsOnSIGTERM(t *testing.T) {
	e := newDNSEnv(t, pairCompose)
	t.Setenv("STACK_DAEMON", "off") // up must not start one: the test does
	e.mustRun("up", "-d")
	st := e.observe()
	gw := gateway(t, st, e.project+"_default")
	if _, err := os.Stat(e.socket); err == nil {
		t.Fatal("STACK_DAEMON=off: up started a daemon anyway")
	}

	cmd := exec.Command(env.stackBin, "daemon")
	cmd.Env = append(os.Environ(),
		"STACK_CONTAINERD_ADDRESS="+env.socket,
		"STACK_NAMESPACE="+e.namespace,
		"STACK_STATE_DIR="+e.stateDir,
	)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	answered := waitAnswer(t, gw, "api", 1, 5*time.Second)
	t.Logf("foreground daemon: names answered %s after exec", answered.Sub(start).Round(time.Millisecond))
	if took := answered.Sub(start); took > time.Second {
		t.Errorf("names answered %s after the daemon started, want within 1s", took)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("daemon exit on SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the daemon did not stop on SIGTERM\n%s", logs.String())
	}
	if _, err := os.Stat(e.socket); !os.IsNotExist(err) {
		t.Errorf("the socket remains after a clean stop: %v", err)
	}
	if _, _, err := askHost(gw, "api", dnsmessage.TypeA); err == nil {
		t.Error("something still answers DNS on the gateway after the daemon stopped")
	}
}

// Two commands that find no daemon at the same time start one between
// them, and it serves both projects.
func TestDaemonStartedByTwoCommandsAtOnceIsOne(t *testing.T) {
	e := newDNSEnv(t, pairCompose)
	other := e.project + "b"
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte("name: "+other+"\n"+pairCompose), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.run("-f", file, "down", "-t", "0") })

	results := make(chan result, 2)
	go func() { results <- e.run("up", "-d") }()
	go func() { results <- e.run("-f", file, "up", "-d") }()
	started := 0
	for range 2 {
		r := <-results
		if r.code != 0 {
			t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
		}
		started += strings.Count(r.stderr, "stack daemon was not running")
	}
	out, _ := exec.Command("pgrep", "-f", "daemon --socket "+e.socket).Output()
	if pids := strings.Fields(string(out)); len(pids) != 1 || started != 1 {
		t.Errorf("daemons running on %s: %v; commands saying they started one: %d; want 1 and 1", e.socket, pids, started)
	}
	all := e.stateAll()
	for _, project := range []string{e.project, other} {
		gw := gateway(t, all, project+"_default")
		_, addrs, err := askHost(gw, "api."+project, dnsmessage.TypeA)
		if err != nil || len(addrs) != 1 {
			t.Errorf("api.%s on %s: %v %v", project, gw, addrs, err)
		}
	}
}

// A project with restart policies and no network of its own still needs
// the daemon: killed with -9, the next command brings it back, and it
// restarts the crashing container again.
func TestDaemonKilledIsBackForRestartPoliciesWithoutNetworks(t *testing.T) {
	e := newDNSEnv(t, `
services:
  crash:
    image: busybox
    network_mode: none
    restart: always
    command: ["sh", "-c", "sleep 1; exit 1"]
`)
	e.mustRun("up", "-d")
	before := e.status()
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(before.PID, 5*time.Second)

	r := e.run("ps")
	if r.code != 0 || !strings.Contains(r.stderr, "stack daemon was not running: started it on "+e.socket) {
		t.Fatalf("ps after kill -9 did not bring the daemon back: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	name := e.project + "-crash-1"
	deadline := time.Now().Add(20 * time.Second)
	first := e.container(e.observe(), name).RestartCount
	for time.Now().Before(deadline) {
		if e.container(e.observe(), name).RestartCount > first {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the revived daemon did not restart %s within 20s (restart count stays %d)", name, first)
}
