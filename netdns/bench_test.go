package netdns

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkServeLocal measures local answers over real UDP on loopback:
// clients keep one socket each and alternate a service (3 replicas), a
// container name and an AAAA miss, against a table of 100 containers.
//
//	go test -bench . -run '^$' ./netdns/
func BenchmarkServeLocal(b *testing.B) {
	s := New(Config{})
	s.SetTable(NewTable(append(fixture(), bigService(100)...)))
	benchServe(b, s, []*dns.Msg{query("web", dns.TypeA), query("demo-db-1", dns.TypeA), query("web.demo", dns.TypeAAAA)})
}

// BenchmarkServeForward measures forwarded names through an upstream
// server on loopback.
func BenchmarkServeForward(b *testing.B) {
	up := startUpstream(b, answerA("192.0.2.9"))
	s := New(Config{Upstreams: []netip.AddrPort{up}, MaxForwards: 1024})
	benchServe(b, s, []*dns.Msg{query("example.com", dns.TypeA), query("example.org", dns.TypeA)})
}

func benchServe(b *testing.B, s *Server, queries []*dns.Msg) {
	b.Helper()
	defer s.Close()
	addr, err := s.AddListener(Listener{Network: "demo_default", Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(4) // 4 clients per core: keep the server busy
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		conn, err := c.Dial(addr.String())
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		for i := 0; pb.Next(); i++ {
			q := queries[i%len(queries)].Copy()
			q.Id = dns.Id()
			m, _, err := c.ExchangeWithConn(q, conn)
			if err != nil || m.Rcode != dns.RcodeSuccess {
				b.Errorf("query %s: %v %v", q.Question[0].Name, err, m)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

// BenchmarkHandlerLocal is the handler alone, without sockets: the cost of
// one local answer (lookup, shuffle, EDNS0, size check).
func BenchmarkHandlerLocal(b *testing.B) {
	s := New(Config{})
	s.SetTable(NewTable(append(fixture(), bigService(100)...)))
	h := handlerFor(s, "demo_default")
	q := query("web", dns.TypeA)
	q.SetEdns0(1232, false)
	rec := newRecorder(false)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeDNS(rec, q)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

// BenchmarkNewTable100 is the cost of publishing a change: a table for 100
// containers (3 names each, plus aliases) built and swapped in.
func BenchmarkNewTable100(b *testing.B) {
	s := New(Config{})
	eps := append(fixture(), bigService(92)...)
	b.ReportAllocs()
	for b.Loop() {
		s.SetTable(NewTable(eps))
	}
}

// BenchmarkFastPathLocal is the UDP fast path alone: the same query as
// BenchmarkHandlerLocal, from wire format to wire format.
func BenchmarkFastPathLocal(b *testing.B) {
	s := New(Config{})
	s.SetTable(NewTable(append(fixture(), bigService(100)...)))
	h := handlerFor(s, "demo_default")
	q := query("web", dns.TypeA)
	q.SetEdns0(1232, false)
	pkt, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	client := netip.MustParseAddr("10.10.0.99")
	out := make([]byte, 0, ednsSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := h.fastAnswer(pkt, client, out); !ok {
			b.Fatal("slow path")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

// BenchmarkServeLocalWire is BenchmarkServeLocal with clients that send
// packed queries on connected sockets and allocate nothing, so that
// -benchmem shows the server's own allocations per query (none on the
// fast path).
func BenchmarkServeLocalWire(b *testing.B) {
	s := New(Config{})
	defer s.Close()
	s.SetTable(NewTable(append(fixture(), bigService(100)...)))
	addr, err := s.AddListener(Listener{Network: "demo_default", Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		b.Fatal(err)
	}
	var wire [][]byte
	for _, q := range []*dns.Msg{query("web", dns.TypeA), query("demo-db-1", dns.TypeA), query("web.demo", dns.TypeAAAA)} {
		p, err := q.Pack()
		if err != nil {
			b.Fatal(err)
		}
		wire = append(wire, p)
	}
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		buf := make([]byte, 1500)
		for i := 0; pb.Next(); i++ {
			if _, err := conn.Write(wire[i%len(wire)]); err != nil {
				b.Error(err)
				return
			}
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			if n, err := conn.Read(buf); err != nil || n < headerLen || buf[3]&0xF != dns.RcodeSuccess {
				b.Errorf("query %d: %v", i, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}
