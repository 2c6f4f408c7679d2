package netdns

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestServiceNameAnswersEveryRunningReplica(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "demo_default")
	m := ask(t, h, "web", dns.TypeA)
	wantIPs(t, m, web1, web2, web3)
	if !m.Authoritative {
		t.Error("local answer without AA")
	}
}

func TestContainerNameAnswersOneReplica(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "demo_default")
	wantIPs(t, ask(t, h, "demo-web-2", dns.TypeA), web2)
}

func TestAliasesAnswer(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "demo_default")
	wantIPs(t, ask(t, h, "postgres", dns.TypeA), db)
	wantIPs(t, ask(t, h, "dbhost.", dns.TypeA), db)
}

func TestServiceDotProjectAnswers(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "demo_default")
	wantIPs(t, ask(t, h, "web.demo", dns.TypeA), web1, web2, web3)
}

func TestNameDotNetworkAnswers(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "demo_default")
	wantIPs(t, ask(t, h, "db.demo_default", dns.TypeA), db)
	wantIPs(t, ask(t, h, "postgres.demo_default", dns.TypeA), db)
}

func TestUnknownNameInNetworkZoneIsNXDOMAIN(t *testing.T) {
	s := newTestServer(t, Config{})
	m := ask(t, handlerFor(s, "demo_default"), "nope.demo_default", dns.TypeA)
	wantRcode(t, m, dns.RcodeNameError)
	if !m.Authoritative || s.Stats().Forwarded != 0 {
		t.Errorf("want an authoritative NXDOMAIN without forwarding, got AA=%v forwarded=%d", m.Authoritative, s.Stats().Forwarded)
	}
}

func TestProjectsSharingANetworkNeverAnswerForEachOther(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "shared")
	wantIPs(t, ask(t, h, "db.demo", dns.TypeA), sharedDemoDB)
	wantIPs(t, ask(t, h, "db.other", dns.TypeA), sharedOtherDB)
	wantIPs(t, ask(t, h, "db", dns.TypeA), sharedDemoDB, sharedOtherDB) // like Docker: the bare name is shared
}

func TestAAAAForIPv4OnlyNameIsNoErrorNoData(t *testing.T) {
	s := newTestServer(t, Config{})
	m := ask(t, handlerFor(s, "demo_default"), "web", dns.TypeAAAA)
	wantRcode(t, m, dns.RcodeSuccess)
	if len(m.Answer) != 0 || !m.Authoritative {
		t.Fatalf("want authoritative NOERROR with no answer, got %v", m)
	}
	if s.Stats().Forwarded != 0 {
		t.Fatal("AAAA for a local name was forwarded")
	}
}

func TestAAAAAnswersIPv6Address(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "demo_default")
	wantIPs(t, ask(t, h, "api", dns.TypeAAAA), api6)
	wantIPs(t, ask(t, h, "api", dns.TypeA), api)
}

func TestOtherTypesForLocalNameAreNoData(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "demo_default")
	for _, qt := range []uint16{dns.TypeMX, dns.TypeTXT, dns.TypeSRV} {
		m := ask(t, h, "db", qt)
		wantRcode(t, m, dns.RcodeSuccess)
		if len(m.Answer) != 0 {
			t.Errorf("%s: answer %v, want none", dns.TypeToString[qt], m.Answer)
		}
	}
}

func TestPTRAnswersContainerName(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "demo_default")
	for ip, want := range map[string]string{"10.10.0.12": "demo-web-2.", "10.10.0.20": "demo-db-1.", "fd00:10::30": "demo-api-1."} {
		rev, _ := dns.ReverseAddr(ip)
		m := ask(t, h, rev, dns.TypePTR)
		wantRcode(t, m, dns.RcodeSuccess)
		if len(m.Answer) != 1 || m.Answer[0].(*dns.PTR).Ptr != want {
			t.Errorf("PTR %s: %v, want %s", ip, m.Answer, want)
		}
	}
}

func TestNamesAreCaseInsensitive(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "demo_default")
	m := ask(t, h, "WeB.DeMo", dns.TypeA)
	wantIPs(t, m, web1, web2, web3)
	if m.Answer[0].Header().Name != "WeB.DeMo." {
		t.Errorf("owner %q, want the question's spelling", m.Answer[0].Header().Name)
	}
}

func TestTTLIsSmallAndConfigurable(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want uint32
	}{{Config{}, 2}, {Config{TTL: 7e9}, 7}} {
		m := ask(t, handlerFor(newTestServer(t, tc.cfg), "demo_default"), "web", dns.TypeA)
		for _, rr := range m.Answer {
			if rr.Header().Ttl != tc.want {
				t.Fatalf("TTL %d, want %d", rr.Header().Ttl, tc.want)
			}
		}
	}
}

func TestReplicasAreShuffledPerAnswer(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "demo_default")
	orders := map[string]bool{}
	for i := 0; i < 200 && len(orders) < 3; i++ {
		m := ask(t, h, "web", dns.TypeA)
		wantIPs(t, m, web1, web2, web3)
		orders[order(m)] = true
	}
	if len(orders) < 3 {
		t.Fatalf("200 answers came in only %d orders: %v", len(orders), orders)
	}
}

func TestUnhealthyReplicaLeftOutWhileOthersHealthy(t *testing.T) {
	eps := fixture()
	eps[1].Unhealthy = true // demo-web-2
	s := newTestServer(t, Config{})
	s.SetTable(NewTable(eps))
	h := handlerFor(s, "demo_default")
	wantIPs(t, ask(t, h, "web", dns.TypeA), web1, web3)
	wantIPs(t, ask(t, h, "demo-web-2", dns.TypeA), web2) // alone under its own name: still answered
}

func TestAllUnhealthyReplicasAreAnswered(t *testing.T) {
	eps := fixture()
	for i := range 3 {
		eps[i].Unhealthy = true
	}
	s := newTestServer(t, Config{})
	s.SetTable(NewTable(eps))
	wantIPs(t, ask(t, handlerFor(s, "demo_default"), "web", dns.TypeA), web1, web2, web3)
}

func TestStoppedContainerNeverAnswered(t *testing.T) {
	eps := fixture()
	eps[0].Running = false // demo-web-1
	eps[3].Running = false // demo-db-1: no other replica
	s := newTestServer(t, Config{})
	s.SetTable(NewTable(eps))
	h := handlerFor(s, "demo_default")
	wantIPs(t, ask(t, h, "web", dns.TypeA), web2, web3)
	wantRcode(t, ask(t, h, "demo-web-1.demo_default", dns.TypeA), dns.RcodeNameError)
	rev, _ := dns.ReverseAddr(web1.String())
	if m := ask(t, h, rev, dns.TypePTR); len(m.Answer) != 0 {
		t.Fatalf("PTR of a stopped container: %v", m.Answer)
	}
	if m := ask(t, h, "db", dns.TypeA); len(m.Answer) != 0 { // forwarded: no upstream → SERVFAIL
		t.Fatalf("stopped db answered: %v", m.Answer)
	}
}

func TestNetworkAnswersOnlyItsOwnRecords(t *testing.T) {
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		w.WriteMsg(new(dns.Msg).SetRcode(r, dns.RcodeNameError))
	})
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up}})
	shared := handlerFor(s, "shared")
	m := ask(t, shared, "web", dns.TypeA) // web is only on demo_default
	wantRcode(t, m, dns.RcodeNameError)
	if len(m.Answer) != 0 {
		t.Fatalf("web answered on shared: %v", m.Answer)
	}
	wantIPs(t, ask(t, shared, "demo-db-1", dns.TypeA), sharedDemoDB)              // not 10.10.0.20
	wantIPs(t, ask(t, handlerFor(s, "demo_default"), "demo-db-1", dns.TypeA), db) // and the reverse
}

func TestInternalNetworkRefusesToForward(t *testing.T) {
	calls := 0
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) { calls++; answerA("192.0.2.1")(w, r) })
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up}})
	h := &handler{srv: s, network: "demo_default", internal: true}
	m := ask(t, h, "example.com", dns.TypeA)
	wantRcode(t, m, dns.RcodeRefused)
	if m.RecursionAvailable || calls != 0 {
		t.Fatalf("internal network: RA=%v upstream calls=%d", m.RecursionAvailable, calls)
	}
	wantIPs(t, ask(t, h, "web", dns.TypeA), web1, web2, web3)
}

func TestClientOutsideAllowedPrefixesIsRefused(t *testing.T) {
	s := newTestServer(t, Config{})
	h := &handler{srv: s, network: "demo_default", allow: []netip.Prefix{netip.MustParsePrefix("10.10.0.0/24")}}
	wantRcode(t, ask(t, h, "web", dns.TypeA), dns.RcodeRefused) // the recorder's client is 127.0.0.1
	rec := newRecorder(false)
	rec.remote = &net.UDPAddr{IP: net.ParseIP("10.10.0.99"), Port: 1234}
	h.ServeDNS(rec, query("web", dns.TypeA))
	wantIPs(t, rec.msg, web1, web2, web3)
}

func TestEDNS0IsEchoed(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "demo_default")
	q := query("web", dns.TypeA)
	q.SetEdns0(4096, true)
	m := serve(t, h, q, false)
	opt := m.IsEdns0()
	if opt == nil || !opt.Do() || opt.UDPSize() != ednsSize {
		t.Fatalf("OPT %v, want one with DO and size %d", opt, ednsSize)
	}
	if m := ask(t, h, "web", dns.TypeA); m.IsEdns0() != nil {
		t.Fatal("OPT in the reply to a query without one")
	}
}

func TestUnknownEDNSVersionIsBADVERS(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "demo_default")
	q := query("web", dns.TypeA)
	q.SetEdns0(1232, false)
	q.IsEdns0().SetVersion(1)
	m := serve(t, h, q, false)
	wantRcode(t, m, dns.RcodeBadVers)
	if m.IsEdns0() == nil {
		t.Fatal("BADVERS without OPT")
	}
}

// bigService is a service with n replicas on demo_default.
func bigService(n int) []Endpoint {
	var eps []Endpoint
	for i := range n {
		ip := netip.AddrFrom4([4]byte{10, 30, byte(i / 250), byte(1 + i%250)})
		eps = append(eps, Endpoint{Network: "demo_default", IP: ip, Container: "big-" + ip.String(), Service: "big", Running: true})
	}
	return eps
}

func TestLargeAnswerIsTruncatedOverUDPAndWholeOverTCP(t *testing.T) {
	s := newTestServer(t, Config{})
	s.SetTable(NewTable(bigService(100)))
	h := handlerFor(s, "demo_default")

	udp := ask(t, h, "big", dns.TypeA)
	packed, _ := udp.Pack()
	if !udp.Truncated || len(packed) > dns.MinMsgSize || len(udp.Answer) == 0 {
		t.Fatalf("UDP without EDNS0: TC=%v, %d bytes, %d answers; want TC, <= 512 bytes", udp.Truncated, len(packed), len(udp.Answer))
	}
	q := query("big", dns.TypeA)
	q.SetEdns0(1232, false)
	edns := serve(t, h, q, false)
	packed, _ = edns.Pack()
	if !edns.Truncated || len(packed) > 1232 || len(edns.Answer) <= len(udp.Answer) {
		t.Fatalf("UDP with EDNS0 1232: TC=%v, %d bytes, %d answers", edns.Truncated, len(packed), len(edns.Answer))
	}
	tcp := serve(t, h, query("big", dns.TypeA), true)
	if tcp.Truncated || len(tcp.Answer) != 100 {
		t.Fatalf("TCP: TC=%v, %d answers; want all 100", tcp.Truncated, len(tcp.Answer))
	}
}

func TestMalformedRequestsGetErrorsNotAnswers(t *testing.T) {
	h := handlerFor(newTestServer(t, Config{}), "demo_default")

	resp := query("web", dns.TypeA)
	resp.Response = true
	rec := newRecorder(false)
	h.ServeDNS(rec, resp)
	if rec.writes != 0 {
		t.Fatal("answered a response: a reflection loop waiting to happen")
	}
	update := query("web", dns.TypeA)
	update.Opcode = dns.OpcodeUpdate
	wantRcode(t, serve(t, h, update, false), dns.RcodeNotImplemented)

	none := query("web", dns.TypeA)
	none.Question = nil
	rec = newRecorder(false)
	h.ServeDNS(rec, none)
	wantRcode(t, rec.msg, dns.RcodeFormatError)

	chaos := query("version.bind", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	wantRcode(t, serve(t, h, chaos, false), dns.RcodeRefused)
}

func TestNamesFromEndpoint(t *testing.T) {
	e := Endpoint{Container: "Demo-Web-1", Service: "web", Project: "demo", Aliases: []string{"www.", "WEB", "bad name", ""}}
	got := strings.Join(e.Names(), ",")
	if want := "demo-web-1,web,web.demo,www"; got != want {
		t.Fatalf("names %s, want %s", got, want)
	}
}

func TestMissUnderADomainLikeNetworkIsForwarded(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.8"))
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up}})
	// "shared" could be a real domain: stack must not hide it.
	wantIPs(t, ask(t, handlerFor(s, "shared"), "intranet.shared", dns.TypeA), netip.MustParseAddr("192.0.2.8"))
	wantIPs(t, ask(t, handlerFor(s, "shared"), "db.shared", dns.TypeA), sharedDemoDB, sharedOtherDB)
}

func TestTableListsNamesPerNetwork(t *testing.T) {
	tbl := NewTable(fixture())
	got := strings.Join(tbl.Names("shared"), " ")
	want := "db. db.demo. db.demo.shared. db.other. db.other.shared. db.shared. demo-db-1. demo-db-1.shared. other-db-1. other-db-1.shared."
	if got != want {
		t.Fatalf("names\n got %s\nwant %s", got, want)
	}
	if n := strings.Join(tbl.Networks(), " "); n != "demo_default shared" {
		t.Fatalf("networks %s", n)
	}
	v4, v6, ok := tbl.Lookup("demo_default", "API.demo.")
	if !ok || len(v4) != 1 || v4[0] != api || len(v6) != 1 || v6[0] != api6 {
		t.Fatalf("lookup api: %v %v %v", v4, v6, ok)
	}
	if name, ok := tbl.Reverse("demo_default", web3); !ok || name != "demo-web-3" {
		t.Fatalf("reverse %s: %q %v", web3, name, ok)
	}
	if _, _, ok := tbl.Lookup("demo_default", "other-db-1"); ok {
		t.Fatal("a name from another network")
	}
}
