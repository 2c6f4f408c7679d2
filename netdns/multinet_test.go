package netdns

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// askFrom sends a query to network's handler as if from client.
func askFrom(t *testing.T, s *Server, network string, client netip.Addr, name string) *dns.Msg {
	t.Helper()
	rec := newRecorder(false)
	rec.remote = &net.UDPAddr{IP: client.AsSlice(), Port: 40000}
	handlerFor(s, network).ServeDNS(rec, query(name, dns.TypeA))
	if rec.msg == nil {
		t.Fatalf("no reply to %s from %s", name, client)
	}
	return rec.msg
}

// A container on two networks asks the DNS server of its first one and
// still resolves the names of the second, like Docker; a container on the
// first network only does not.
func TestAContainerOnTwoNetworksResolvesTheNamesOfBoth(t *testing.T) {
	web := netip.MustParseAddr("10.1.0.2")
	webBack := netip.MustParseAddr("10.2.0.2")
	api := netip.MustParseAddr("10.2.0.3")
	edge := netip.MustParseAddr("10.1.0.5")
	s := New(Config{})
	t.Cleanup(s.Close)
	s.SetTable(NewTable([]Endpoint{
		{Network: "p_front", IP: web, Container: "p-web-1", Service: "web", Project: "p", Running: true},
		{Network: "p_back", IP: webBack, Container: "p-web-1", Service: "web", Project: "p", Running: true},
		{Network: "p_back", IP: api, Container: "p-api-1", Service: "api", Project: "p", Running: true},
		{Network: "p_front", IP: edge, Container: "p-edge-1", Service: "edge", Project: "p", Running: true},
	}))

	wantIPs(t, askFrom(t, s, "p_front", web, "api"), api)
	wantIPs(t, askFrom(t, s, "p_front", web, "api.p_back"), api)
	wantIPs(t, askFrom(t, s, "p_front", web, "web"), web) // its queried network first
	wantIPs(t, askFrom(t, s, "p_front", web, "edge"), edge)

	if m := askFrom(t, s, "p_front", edge, "api"); len(m.Answer) != 0 || m.Rcode == dns.RcodeSuccess {
		t.Errorf("edge (front only) resolved api of the back network: %v", m)
	}
}
