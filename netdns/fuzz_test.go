package netdns

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzServeDNS feeds the handler every message that unpacks, on a network
// that forwards (to nothing: no upstream, so no traffic) and on an internal
// one, over UDP and TCP. The handler must never panic, must stay silent for
// responses and otherwise write exactly one reply that packs, has the
// query's ID and fits the client's UDP size. Every packet also goes through
// the UDP fast path, which must never panic and, when it answers, must
// answer what the slow path through miekg/dns answers.
//
//	go test -fuzz=FuzzServeDNS -fuzztime=20s ./netdns/
func FuzzServeDNS(f *testing.F) {
	s := New(Config{})
	s.SetTable(NewTable(append(fixture(), bigService(100)...)))
	handlers := []*handler{
		{srv: s, network: "demo_default"},
		{srv: s, network: "shared", internal: true},
	}
	for _, seed := range fastSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, packet []byte) {
		for _, h := range handlers {
			for _, client := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), db} { // db: also on shared
				checkFastPath(t, h, packet, client)
			}
		}
		for _, h := range handlers {
			for _, tcp := range []bool{false, true} {
				r := new(dns.Msg)
				if r.Unpack(packet) != nil {
					return // the server drops or FORMERRs these before the handler
				}
				rec := newRecorder(tcp)
				h.ServeDNS(rec, r)
				checkReply(t, r, rec, tcp)
			}
		}
	})
}

func checkReply(t *testing.T, r *dns.Msg, rec *recorder, tcp bool) {
	t.Helper()
	if r.Response {
		if rec.writes != 0 {
			t.Fatalf("answered a response: %v", rec.msg)
		}
		return
	}
	if rec.writes != 1 {
		t.Fatalf("%d replies to %v", rec.writes, r)
	}
	if rec.msg.Id != r.Id || !rec.msg.Response {
		t.Fatalf("reply id %d response %v, query id %d", rec.msg.Id, rec.msg.Response, r.Id)
	}
	packed, err := rec.msg.Pack()
	if err != nil {
		t.Fatalf("reply does not pack: %v\n%v", err, rec.msg)
	}
	limit := dns.MaxMsgSize
	if !tcp {
		limit = dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			limit = max(limit, int(min(opt.UDPSize(), ednsSize)))
		}
	}
	if len(packed) > limit {
		t.Fatalf("reply of %d bytes over a %d-byte limit", len(packed), limit)
	}
}

// fastSeeds are queries the fast path answers and near misses it leaves
// to the slow path.
func fastSeeds(t testing.TB) [][]byte {
	t.Helper()
	var msgs []*dns.Msg
	for _, name := range []string{"web", "WeB.DeMo", "api", "big", "demo-db-1.demo_default", "nope.demo_default", "example.com", "db"} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeANY, dns.TypeMX, dns.TypePTR} {
			msgs = append(msgs, query(name, qt))
			q := query(name, qt)
			q.SetEdns0(4096, true)
			msgs = append(msgs, q)
		}
	}
	rev, _ := dns.ReverseAddr(web2.String())
	msgs = append(msgs, query(rev, dns.TypePTR))
	small := query("web", dns.TypeA)
	small.SetEdns0(100, false)
	cookie := query("web", dns.TypeA)
	cookie.SetEdns0(1232, false)
	cookie.IsEdns0().Option = append(cookie.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"})
	msgs = append(msgs, small, cookie)
	var out [][]byte
	for _, m := range msgs {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// checkFastPath runs packet through the fast path and, when it answers,
// compares its reply with the slow path's.
func checkFastPath(t *testing.T, h *handler, packet []byte, client netip.Addr) {
	t.Helper()
	fast, ok := h.fastAnswer(packet, client, make([]byte, 0, ednsSize))
	if !ok {
		return
	}
	rec := newRecorder(false)
	rec.remote = &net.UDPAddr{IP: client.AsSlice(), Port: 40000}
	h.serveWire(packet, rec)
	if rec.writes != 1 {
		t.Fatalf("the fast path answered a packet the slow path answers %d times", rec.writes)
	}
	slow, err := rec.msg.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := canonical(t, fast), canonical(t, slow); got != want {
		t.Fatalf("fast path\n%s\nslow path\n%s", got, want)
	}
}

// canonical is a reply as text with its records sorted: the two paths
// shuffle independently and compress differently.
func canonical(t *testing.T, b []byte) string {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("reply does not unpack: %v", err)
	}
	var rrs []string
	for _, rr := range m.Answer {
		rrs = append(rrs, rr.String())
	}
	sort.Strings(rrs)
	m.Answer = nil
	return fmt.Sprintf("%v\n%s", m, strings.Join(rrs, "\n"))
}
