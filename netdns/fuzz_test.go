package netdns

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzServeDNS feeds the handler every message that unpacks, on a network
// that forwards (to nothing: no upstream, so no traffic) and on an internal
// one, over UDP and TCP. The handler must never panic, must stay silent for
// responses and otherwise write exactly one reply that packs, has the
// query's ID and fits the client's UDP size.
//
//	go test -fuzz=FuzzServeDNS -fuzztime=20s ./netdns/
func FuzzServeDNS(f *testing.F) {
	s := New(Config{})
	s.SetTable(NewTable(append(fixture(), bigService(100)...)))
	handlers := []*handler{
		{srv: s, network: "demo_default"},
		{srv: s, network: "shared", internal: true},
	}
	f.Fuzz(func(t *testing.T, packet []byte) {
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
