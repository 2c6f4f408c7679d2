package integration

import (
	"context"
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

	start := time.Now()
	r := e.run("up", "-d")
	if r.code != 0 || !strings.Contains(r.stderr, "stack daemon was not running: started it on "+e.socket) {
		t.Fatalf("up after kill -9: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	answered := waitAnswer(t, gw, "api", 1, 5*time.Second)
	took := answered.Sub(start)
	t.Logf("kill -9, then `stack up -d`: names answer again %s after the command started", took.Round(time.Millisecond))
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
// containerd's task-start event: the daemon follows events, debounces, and
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
	// And a stopped replica leaves the answers.
	e.mustRun("up", "-d", "--scale", "api=1")
	waitAnswer(t, gw, "api", 1, 2*time.Second)
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
