package daemon

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
)

// fakeSource is an engine whose state the test sets and whose events the
// test sends.
type fakeSource struct {
	mu       sync.Mutex
	st       engine.State
	observes int
	events   chan engine.Event
}

func newFakeSource(st engine.State) *fakeSource {
	return &fakeSource{st: st, events: make(chan engine.Event, 16)}
}

func (f *fakeSource) Observe(ctx context.Context, project string) (engine.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observes++
	return f.st, nil
}

func (f *fakeSource) Events(ctx context.Context, fn func(engine.Event)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-f.events:
			fn(ev)
		}
	}
}

func (f *fakeSource) set(st engine.State) {
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
}

func (f *fakeSource) observeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.observes
}

// loopNet is a network on the loopback range, so that tests can listen on
// its "gateway" without creating a bridge.
func loopNet(name, gateway string) engine.Network {
	return engine.Network{Name: name, Subnet: "127.0.0.0/8", Gateway: gateway}
}

func running(name, service, project string, addrs map[string]string) engine.Container {
	return engine.Container{
		ID: name + "-id", Name: name, Service: service, Project: project, Status: engine.StatusRunning,
		Addresses: addrs, Hostname: name + "-host",
	}
}

func startDaemon(t *testing.T, src Source, cfg Config) *Daemon {
	t.Helper()
	cfg.Source = src
	cfg.DNSPort = -1
	cfg.Upstreams = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}
	d := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, time.Second, func() bool { return d.Status().Refresh.Count > 0 })
	return d
}

func waitFor(t *testing.T, limit time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func lookup(d *Daemon, network, name string) []string {
	v4, v6, _ := d.DNS().Table().Lookup(network, name)
	var out []string
	for _, a := range append(v4, v6...) {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

func TestEndpointsAreRunningContainersPerNetworkWithAliasesAndHostname(t *testing.T) {
	web := running("demo-web-1", "web", "demo", map[string]string{"demo_front": "10.1.0.2", "demo_back": "10.2.0.2"})
	web.Aliases = map[string][]string{"demo_back": {"www"}}
	stopped := running("demo-db-1", "db", "demo", nil)
	stopped.Status = engine.StatusExited
	oneoff := running("demo-web-run-1", "web", "demo", map[string]string{"demo_front": "10.1.0.9"})
	oneoff.OneOff = true
	sick := running("demo-api-1", "api", "demo", map[string]string{"demo_back": "10.2.0.3"})
	sick.Health = "unhealthy"

	eps := Endpoints(engine.State{Containers: []engine.Container{web, stopped, oneoff, sick}})
	if len(eps) != 4 {
		t.Fatalf("want 4 endpoints (web on 2 networks, the one-off, api), got %d: %+v", len(eps), eps)
	}
	back := eps[0]
	if back.Network != "demo_back" || back.IP.String() != "10.2.0.2" || !slices.Equal(back.Aliases, []string{"www", "demo-web-1-host"}) {
		t.Errorf("web on demo_back: %+v", back)
	}
	if eps[2].Service != "" || eps[2].Container != "demo-web-run-1" {
		t.Errorf("a one-off container must not answer for its service: %+v", eps[2])
	}
	if !eps[3].Unhealthy {
		t.Errorf("an unhealthy container must be marked so: %+v", eps[3])
	}
}

func TestListenersAreOnGatewaysAndAllowOnlyTheSubnet(t *testing.T) {
	st := engine.State{Networks: []engine.Network{
		{Name: "b_net", Subnet: "10.9.0.0/24", Gateway: "10.9.0.1", Internal: true},
		{Name: "a_net", Subnet: "10.8.0.0/24", Gateway: "10.8.0.1"},
		{Name: "broken", Subnet: "10.7.0.0/24"},
	}}
	ls := Listeners(st, 53)
	if len(ls) != 2 || ls[0].Network != "a_net" || ls[0].Addr.String() != "10.8.0.1:53" || ls[1].Addr.String() != "10.9.0.1:53" {
		t.Fatalf("listeners: %+v", ls)
	}
	if !ls[1].Internal || len(ls[0].Allow) != 1 || ls[0].Allow[0].String() != "10.8.0.0/24" {
		t.Errorf("internal flag or allowed subnet wrong: %+v", ls)
	}
}

func TestDaemonServesAtOnceAndFollowsAnEventWithinMilliseconds(t *testing.T) {
	src := newFakeSource(engine.State{
		Networks:   []engine.Network{loopNet("demo_default", "127.0.0.1")},
		Containers: []engine.Container{running("demo-web-1", "web", "demo", map[string]string{"demo_default": "10.1.0.2"})},
	})
	d := startDaemon(t, src, Config{})
	if got := lookup(d, "demo_default", "web"); !slices.Equal(got, []string{"10.1.0.2"}) {
		t.Fatalf("web right after start: %v", got)
	}
	if ls := d.DNS().Listeners(); len(ls) != 1 || ls[0].Network != "demo_default" {
		t.Fatalf("listeners after start: %+v", ls)
	}

	st := src.st
	st.Containers = append(slices.Clone(st.Containers), running("demo-web-2", "web", "demo", map[string]string{"demo_default": "10.1.0.3"}))
	src.set(st)
	sent := time.Now()
	src.events <- engine.Event{Time: sent, Topic: engine.TopicTaskStart, ContainerID: "demo-web-2-id"}
	took := waitFor(t, time.Second, func() bool { return len(lookup(d, "demo_default", "web")) == 2 })
	t.Logf("event to answer: %s (daemon measured %s)", took, d.Status().Refresh.LastEventLatency)
	if took > 100*time.Millisecond {
		t.Errorf("a started replica reached the answers after %s, want under 100ms", took)
	}
	if got := lookup(d, "demo_default", "demo-web-2.demo_default"); !slices.Equal(got, []string{"10.1.0.3"}) {
		t.Errorf("<name>.<network>: %v", got)
	}
}

func TestDaemonDebouncesABurstIntoFewObserves(t *testing.T) {
	src := newFakeSource(engine.State{})
	d := startDaemon(t, src, Config{Debounce: 20 * time.Millisecond, Resync: time.Hour})
	before := src.observeCount()
	for i := range 10 {
		src.events <- engine.Event{Time: time.Now(), Topic: engine.TopicTaskExit, ContainerID: string(rune('a' + i))}
	}
	waitFor(t, time.Second, func() bool { return d.Status().Refresh.Count >= 2 })
	time.Sleep(50 * time.Millisecond)
	if n := src.observeCount() - before; n < 1 || n > 2 {
		t.Errorf("10 events in a burst caused %d observes, want 1 or 2", n)
	}
}

func TestDaemonStartsAndStopsListenersAsNetworksComeAndGo(t *testing.T) {
	src := newFakeSource(engine.State{})
	d := startDaemon(t, src, Config{Resync: time.Hour})
	src.set(engine.State{Networks: []engine.Network{loopNet("n1", "127.0.0.1"), loopNet("n2", "127.0.0.2")}})
	src.events <- engine.Event{Topic: engine.TopicContainerCreate}
	waitFor(t, time.Second, func() bool { return len(d.DNS().Listeners()) == 2 })
	src.set(engine.State{Networks: []engine.Network{loopNet("n2", "127.0.0.2")}})
	src.events <- engine.Event{Topic: engine.TopicContainerDelete}
	waitFor(t, time.Second, func() bool { return len(d.DNS().Listeners()) == 1 })
	st := d.Status()
	if len(st.Networks) != 1 || st.Networks[0].Name != "n2" || st.Networks[0].Listen == "" {
		t.Errorf("status networks: %+v", st.Networks)
	}
}

func TestStatusOverTheSocketIsRootOnly(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "sd-") // unix socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "run", "stack.sock")
	ctx := context.Background()
	l, err := Listen(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource(engine.State{
		Networks:   []engine.Network{loopNet("demo_default", "127.0.0.1")},
		Containers: []engine.Container{running("demo-web-1", "web", "demo", map[string]string{"demo_default": "10.1.0.2"})},
	})
	d := New(Config{Source: src, DNSPort: -1, Upstreams: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}, Info: Info{Namespace: "ns1"}})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(rctx, l) }()
	t.Cleanup(cancel)

	var st Status
	waitFor(t, 2*time.Second, func() bool { st, err = Dial(sock).Status(ctx); return err == nil })
	if st.Namespace != "ns1" || len(st.Networks) != 1 || st.Networks[0].Listen == "" {
		t.Fatalf("status: %+v", st)
	}
	if !slices.ContainsFunc(st.Networks[0].Names, func(n Name) bool { return n.Name == "web.demo" && slices.Equal(n.Addresses, []string{"10.1.0.2"}) }) {
		t.Errorf("names on demo_default: %+v", st.Networks[0].Names)
	}
	for path, want := range map[string]os.FileMode{sock: 0o600, filepath.Dir(sock): 0o700} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode().Perm(), err, want)
		}
	}
	if _, err := Listen(ctx, sock); err == nil {
		t.Error("a second daemon could listen on a socket that answers")
	}
	if _, err := Dial(sock).Refresh(ctx); err != nil {
		t.Errorf("refresh: %v", err)
	}
	cancel()
	<-done
	for _, left := range []string{sock, sock + ".lock"} {
		if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s remains after the daemon stopped (%v)", left, err)
		}
	}
	l2, err := Listen(ctx, sock)
	if err != nil {
		t.Fatalf("a new daemon cannot listen after the old one stopped: %v", err)
	}
	l2.Close()
}

func TestDaemonEndsWhenItsStateDirectoryIsRemoved(t *testing.T) {
	state := t.TempDir()
	d := New(Config{Source: newFakeSource(engine.State{}), DNSPort: -1, StateDir: state,
		Upstreams: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}})
	errc := make(chan error, 1)
	go func() { errc <- d.Run(context.Background(), nil) }()
	os.RemoveAll(state)
	select {
	case err := <-errc:
		if !errors.Is(err, ErrStateDirGone) {
			t.Fatalf("Run: %v, want ErrStateDirGone", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the daemon kept running without its state directory")
	}
}

func TestDaemonRefreshesWhenAWatchedDirectoryChanges(t *testing.T) {
	dir := t.TempDir()
	src := newFakeSource(engine.State{})
	d := startDaemon(t, src, Config{Resync: time.Hour, Watch: []string{dir}})
	src.set(engine.State{Networks: []engine.Network{loopNet("n1", "127.0.0.1")}})
	time.Sleep(20 * time.Millisecond) // let the mtime tick
	if err := os.WriteFile(filepath.Join(dir, "n1.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 2*time.Second, func() bool { return len(d.DNS().Listeners()) == 1 })
	t.Logf("network record to listener: %s", took)
}

func TestUpstreamsFollowTheHostsResolvConfButNeverAGateway(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("nameserver 127.0.0.53\nnameserver 10.89.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := newFakeSource(engine.State{Networks: []engine.Network{{Name: "n", Subnet: "10.89.0.0/24", Gateway: "10.89.0.1"}}})
	d := New(Config{Source: src, DNSPort: -1, ResolvConf: path})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx, nil) }()
	t.Cleanup(func() { cancel(); <-done })

	upstreams := func() []string {
		var out []string
		for _, u := range d.Status().Upstreams {
			out = append(out, u.Addr)
		}
		return out
	}
	waitFor(t, 2*time.Second, func() bool { return slices.Equal(upstreams(), []string{"127.0.0.53:53"}) })
	time.Sleep(10 * time.Millisecond) // a distinct mtime
	if err := os.WriteFile(path, []byte("nameserver 127.0.0.54\nnameserver 127.0.0.55\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 3*time.Second, func() bool { return slices.Equal(upstreams(), []string{"127.0.0.54:53", "127.0.0.55:53"}) })
	t.Logf("resolv.conf change reached the upstreams in %s", took)
	if st := d.Status(); st.UpstreamsFrom != path {
		t.Errorf("upstreams from %q, want %q", st.UpstreamsFrom, path)
	}
}

// A request for the answers as of some time is served by a refresh that
// started after it, without observing again; a request as of now observes.
func TestRefreshSinceIsServedByALaterRefresh(t *testing.T) {
	src := newFakeSource(engine.State{})
	before := time.Now()
	d := startDaemon(t, src, Config{Debounce: time.Millisecond, Resync: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	observed := src.observeCount()
	if err := d.RefreshSince(ctx, before); err != nil {
		t.Fatal(err)
	}
	if got := src.observeCount(); got != observed {
		t.Fatalf("RefreshSince a time before the last refresh observed again (%d observes, want %d)", got, observed)
	}
	if err := d.RefreshSince(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := src.observeCount(); got != observed+1 {
		t.Fatalf("RefreshSince now: %d observes, want %d", got, observed+1)
	}
}

// A request that comes while a burst of events is being waited out ends the
// wait: one refresh answers both.
func TestARefreshRequestCutsTheEventDebounceShort(t *testing.T) {
	src := newFakeSource(engine.State{})
	d := startDaemon(t, src, Config{Debounce: 2 * time.Second, Resync: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	observed := src.observeCount()
	src.events <- engine.Event{Topic: engine.TopicTaskStart, ContainerID: "x"}
	time.Sleep(50 * time.Millisecond) // the loop is now in the 2 s debounce
	start := time.Now()
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the refresh waited %s for the event debounce, want it cut short", took)
	}
	if got := src.observeCount(); got != observed+1 {
		t.Fatalf("%d observes for one event and one request in the debounce, want %d", got, observed+1)
	}
}
