package netdns

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

func TestRoundTripOverUDPAndTCP(t *testing.T) {
	s := newTestServer(t, Config{})
	addr := listen(t, s, Listener{Network: "demo_default"})
	for _, netw := range []string{"udp", "tcp"} {
		m := exchange(t, netw, addr, query("web.demo", dns.TypeA))
		wantIPs(t, m, web1, web2, web3)
	}
}

func TestRoundTripOnAnIPv6Gateway(t *testing.T) {
	s := newTestServer(t, Config{})
	addr, err := s.AddListener(Listener{Network: "demo_default", Addr: netip.MustParseAddrPort("[::1]:0")})
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	if !addr.Addr().Is6() || addr.Port() == 0 {
		t.Fatalf("bound %s, want ::1 and a port", addr)
	}
	for _, netw := range []string{"udp", "tcp"} {
		m := exchange(t, netw, addr.String(), query("web.demo", dns.TypeA))
		wantIPs(t, m, web1, web2, web3)
	}
}

func TestListenerTellsTheNetwork(t *testing.T) {
	s := newTestServer(t, Config{})
	demo := listen(t, s, Listener{Network: "demo_default"})
	shared := listen(t, s, Listener{Network: "shared", Internal: true})
	wantIPs(t, exchange(t, "udp", demo, query("demo-db-1", dns.TypeA)), db)
	wantIPs(t, exchange(t, "udp", shared, query("demo-db-1", dns.TypeA)), sharedDemoDB)
	wantRcode(t, exchange(t, "udp", shared, query("web", dns.TypeA)), dns.RcodeRefused)
}

func TestListenerNeverOnEveryAddress(t *testing.T) {
	s := newTestServer(t, Config{})
	for _, a := range []string{"0.0.0.0:0", "[::]:0", "224.0.0.1:0"} {
		_, err := s.AddListener(Listener{Network: "demo_default", Addr: netip.MustParseAddrPort(a)})
		if err == nil || !strings.Contains(err.Error(), "not a gateway address") {
			t.Errorf("%s: err %v, want a refusal", a, err)
		}
	}
	if _, err := s.AddListener(Listener{Network: "demo_default"}); err == nil {
		t.Error("listener without an address accepted")
	}
}

func TestAddListenerTwiceIsANoOp(t *testing.T) {
	s := newTestServer(t, Config{})
	first, err := s.AddListener(Listener{Network: "demo_default", Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.AddListener(Listener{Network: "demo_default", Addr: first})
	if err != nil || again != first {
		t.Fatalf("re-adding: %v, %v; want %v, nil", again, err, first)
	}
	if _, err := s.AddListener(Listener{Network: "shared", Addr: first}); err == nil {
		t.Fatal("a second network on the same address was accepted")
	}
	if got := s.Listeners(); len(got) != 1 || got[0].Addr != first {
		t.Fatalf("listeners %v", got)
	}
}

func TestRemoveListenerStopsAnsweringThere(t *testing.T) {
	s := newTestServer(t, Config{})
	demo := listen(t, s, Listener{Network: "demo_default"})
	shared := listen(t, s, Listener{Network: "shared"})
	s.RemoveListener("demo_default")
	s.RemoveListener("never-added")
	c := &dns.Client{Net: "tcp", Timeout: time.Second}
	if _, _, err := c.Exchange(query("web", dns.TypeA), demo); err == nil {
		t.Fatal("removed listener still answers")
	}
	wantIPs(t, exchange(t, "udp", shared, query("db.other", dns.TypeA)), sharedOtherDB)
}

func TestServeClosesOnCancel(t *testing.T) {
	s := newTestServer(t, Config{})
	addr := listen(t, s, Listener{Network: "demo_default"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	wantIPs(t, exchange(t, "udp", addr, query("db", dns.TypeA)), db)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddListener(Listener{Network: "x", Addr: netip.MustParseAddrPort("127.0.0.1:0")}); err != ErrServerClosed {
		t.Fatalf("after Serve returned: %v, want ErrServerClosed", err)
	}
}

// TestTableSwapUnderLoadDropsNoQuery swaps the table 300 times while four
// clients send 1000 queries each over UDP: every query gets a full answer
// from one of the two tables.
func TestTableSwapUnderLoadDropsNoQuery(t *testing.T) {
	s := newTestServer(t, Config{})
	addr := listen(t, s, Listener{Network: "demo_default"})
	a, b := NewTable(fixture()), NewTable(bigService(5))
	big := NewTable(append(fixture(), bigService(5)...))
	var stop atomic.Bool
	var swaps sync.WaitGroup
	swaps.Go(func() {
		for i := 0; i < 300 && !stop.Load(); i++ {
			s.SetTable([]*Table{a, b, big}[i%3])
			time.Sleep(100 * time.Microsecond)
		}
	})
	var failures atomic.Int64
	var clients sync.WaitGroup
	for range 4 {
		clients.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
			for i := range 1000 {
				name := []string{"web", "big"}[i%2]
				m, _, err := c.Exchange(query(name, dns.TypeA), addr)
				if err != nil || !plausible(m, name) {
					failures.Add(1)
					t.Errorf("query %d %s: %v %v", i, name, err, m)
					return
				}
			}
		})
	}
	clients.Wait()
	stop.Store(true)
	swaps.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d queries failed during table swaps", failures.Load())
	}
}

// plausible: an answer from one of the tables, or the not-found a table
// without the name gives (forwarded, no upstream: SERVFAIL).
func plausible(m *dns.Msg, name string) bool {
	switch {
	case m.Rcode == dns.RcodeServerFailure:
		return true
	case name == "web":
		return m.Rcode == dns.RcodeSuccess && len(m.Answer) == 3
	default:
		return m.Rcode == dns.RcodeSuccess && len(m.Answer) == 5
	}
}

func TestAddListenerWithOtherSettingsIsRefused(t *testing.T) {
	s := newTestServer(t, Config{})
	addr, err := s.AddListener(Listener{Network: "demo_default", Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddListener(Listener{Network: "demo_default", Addr: addr, Internal: true}); err == nil {
		t.Fatal("changed settings accepted silently")
	}
}

func TestAddingADeadListenerAgainRevivesIt(t *testing.T) {
	s := newTestServer(t, Config{})
	addr, err := s.AddListener(Listener{Network: "demo_default", Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	ln := s.listeners[addr]
	s.mu.Unlock()
	unix.Shutdown(ln.udp.fd, unix.SHUT_RD) // the socket stops delivering, as when its address goes away
	<-ln.failed
	again, err := s.AddListener(Listener{Network: "demo_default", Addr: addr})
	if err != nil || again != addr {
		t.Fatalf("re-adding a dead listener: %v %v", again, err)
	}
	wantIPs(t, exchange(t, "udp", addr.String(), query("db", dns.TypeA)), db)
}
