package netdns

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// The fast path must answer the queries containers send all day, so that
// they never reach miekg/dns's Msg; the rest it leaves to the handler.
func TestFastPathAnswersTheCommonQueries(t *testing.T) {
	s := newTestServer(t, Config{})
	s.SetTable(NewTable(append(fixture(), bigService(100)...)))
	h := handlerFor(s, "demo_default")
	rev, _ := dns.ReverseAddr(web2.String())
	withEDNS := func(m *dns.Msg, size uint16, do bool) *dns.Msg { m.SetEdns0(size, do); return m }
	withCookie := withEDNS(query("web", dns.TypeA), 1232, false)
	withCookie.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"}}
	for _, tc := range []struct {
		q    *dns.Msg
		fast bool
	}{
		{query("web", dns.TypeA), true},
		{query("WeB.DeMo", dns.TypeA), true},
		{query("web", dns.TypeAAAA), true}, // NOERROR, no data
		{query("api", dns.TypeANY), true},
		{query("db", dns.TypeMX), true},
		{query(rev, dns.TypePTR), true},
		{query("nope.demo_default", dns.TypeA), true}, // NXDOMAIN
		{withEDNS(query("web", dns.TypeA), 4096, true), true},
		{query("example.com", dns.TypeA), false}, // forwarded
		{query("big", dns.TypeA), false},         // truncated
		{withEDNS(query("web", dns.TypeA), 1232, false), true},
		{withCookie, false},                 // EDNS0 options
		{query("we\\.b", dns.TypeA), false}, // a dot inside a label
	} {
		pkt, err := tc.q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		_, ok := h.fastAnswer(pkt, netip.MustParseAddr("127.0.0.1"), nil)
		if ok != tc.fast {
			t.Errorf("%s %s: fast path %v, want %v", tc.q.Question[0].Name, dns.TypeToString[tc.q.Question[0].Qtype], ok, tc.fast)
		}
		checkFastPath(t, h, pkt, netip.MustParseAddr("127.0.0.1"))
	}
}

func TestFastPathRefusesClientsOutsideTheNetwork(t *testing.T) {
	s := newTestServer(t, Config{})
	h := &handler{srv: s, network: "demo_default", allow: []netip.Prefix{netip.MustParsePrefix("10.10.0.0/24")}}
	pkt, _ := query("web", dns.TypeA).Pack()
	if _, ok := h.fastAnswer(pkt, netip.MustParseAddr("10.99.0.1"), nil); ok {
		t.Fatal("answered a client outside the network's subnet") // the handler refuses it
	}
	if _, ok := h.fastAnswer(pkt, netip.MustParseAddr("10.10.0.9"), nil); !ok {
		t.Fatal("a client on the network took the slow path")
	}
}

func TestFastPathDoesNotAllocate(t *testing.T) {
	s := newTestServer(t, Config{})
	h := handlerFor(s, "demo_default")
	pkt, _ := query("web", dns.TypeA).Pack()
	client := netip.MustParseAddr("10.10.0.99")
	out := make([]byte, 0, ednsSize)
	if n := testing.AllocsPerRun(100, func() { h.fastAnswer(pkt, client, out) }); n != 0 {
		t.Fatalf("%v allocations per answer", n)
	}
}

// A container on two networks gets the names of both from the fast path
// too, and a container on one network does not.
func TestFastPathAnswersTheOtherNetworksOfTheClient(t *testing.T) {
	s := newTestServer(t, Config{})
	h := handlerFor(s, "demo_default")
	pkt, _ := query("other-db-1", dns.TypeA).Pack() // only on "shared", where demo-db-1 is too
	if _, ok := h.fastAnswer(pkt, db, nil); !ok {
		t.Fatal("demo-db-1 asked for a name of its other network: slow path")
	}
	checkFastPath(t, h, pkt, db)
	if _, ok := h.fastAnswer(pkt, web1, nil); ok {
		t.Fatal("demo-web-1 (demo_default only) got a name of another network")
	}
}
