package netdns

import (
	"net"
	"net/netip"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// recorder is a dns.ResponseWriter that keeps the reply, like CoreDNS's
// dnstest.Recorder.
type recorder struct {
	local, remote net.Addr
	msg           *dns.Msg
	writes        int
}

func newRecorder(tcp bool) *recorder {
	if tcp {
		return &recorder{
			local:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53},
			remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
		}
	}
	return &recorder{
		local:  &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53},
		remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
	}
}

func (r *recorder) LocalAddr() net.Addr       { return r.local }
func (r *recorder) RemoteAddr() net.Addr      { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error { r.msg = m; r.writes++; return nil }
func (r *recorder) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	return len(b), r.WriteMsg(m)
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

// Fixture: project "demo" on demo_default (web ×3, db, api with an alias),
// project "other" sharing the external network "shared" with demo's db.
var (
	web1 = netip.MustParseAddr("10.10.0.11")
	web2 = netip.MustParseAddr("10.10.0.12")
	web3 = netip.MustParseAddr("10.10.0.13")
	db   = netip.MustParseAddr("10.10.0.20")
	api  = netip.MustParseAddr("10.10.0.30")
	api6 = netip.MustParseAddr("fd00:10::30")

	sharedDemoDB  = netip.MustParseAddr("10.20.0.2")
	sharedOtherDB = netip.MustParseAddr("10.20.0.3")
)

func fixture() []Endpoint {
	return []Endpoint{
		{Network: "demo_default", IP: web1, Container: "demo-web-1", Service: "web", Project: "demo", Running: true},
		{Network: "demo_default", IP: web2, Container: "demo-web-2", Service: "web", Project: "demo", Running: true},
		{Network: "demo_default", IP: web3, Container: "demo-web-3", Service: "web", Project: "demo", Running: true},
		{Network: "demo_default", IP: db, Container: "demo-db-1", Service: "db", Project: "demo", Aliases: []string{"postgres", "dbhost"}, Running: true},
		{Network: "demo_default", IP: api, Container: "demo-api-1", Service: "api", Project: "demo", Running: true},
		{Network: "demo_default", IP: api6, Container: "demo-api-1", Service: "api", Project: "demo", Running: true},
		{Network: "shared", IP: sharedDemoDB, Container: "demo-db-1", Service: "db", Project: "demo", Running: true},
		{Network: "shared", IP: sharedOtherDB, Container: "other-db-1", Service: "db", Project: "other", Running: true},
	}
}

// newTestServer returns a server with the fixture table and cfg.
func newTestServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s := New(cfg)
	s.SetTable(NewTable(fixture()))
	t.Cleanup(s.Close)
	return s
}

func handlerFor(s *Server, network string) *handler {
	return &handler{srv: s, network: network}
}

func query(name string, qtype uint16) *dns.Msg {
	return new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
}

// ask sends a query to h through a UDP recorder and returns the reply.
func ask(t *testing.T, h dns.Handler, name string, qtype uint16) *dns.Msg {
	t.Helper()
	return serve(t, h, query(name, qtype), false)
}

func serve(t *testing.T, h dns.Handler, q *dns.Msg, tcp bool) *dns.Msg {
	t.Helper()
	rec := newRecorder(tcp)
	h.ServeDNS(rec, q)
	if rec.msg == nil {
		t.Fatalf("%s %s: no reply", q.Question[0].Name, dns.TypeToString[q.Question[0].Qtype])
	}
	if rec.msg.Id != q.Id {
		t.Fatalf("reply id %d, want %d", rec.msg.Id, q.Id)
	}
	if _, err := rec.msg.Pack(); err != nil {
		t.Fatalf("reply does not pack: %v", err)
	}
	return rec.msg
}

// ips returns the A and AAAA addresses of an answer, sorted.
func ips(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	sort.Strings(out)
	return out
}

func order(m *dns.Msg) string {
	s := ""
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			s += a.A.String() + " "
		}
	}
	return s
}

func wantRcode(t *testing.T, m *dns.Msg, rcode int) {
	t.Helper()
	if m.Rcode != rcode {
		t.Fatalf("rcode %s, want %s\n%v", dns.RcodeToString[m.Rcode], dns.RcodeToString[rcode], m)
	}
}

func wantIPs(t *testing.T, m *dns.Msg, want ...netip.Addr) {
	t.Helper()
	wantRcode(t, m, dns.RcodeSuccess)
	var ws []string
	for _, w := range want {
		ws = append(ws, w.String())
	}
	sort.Strings(ws)
	got := ips(m)
	if len(got) != len(ws) {
		t.Fatalf("answer %v, want %v", got, ws)
	}
	for i := range got {
		if got[i] != ws[i] {
			t.Fatalf("answer %v, want %v", got, ws)
		}
	}
}

// startUpstream runs h as a DNS server on 127.0.0.1, UDP and TCP on one
// port, and returns its address. It is the only upstream tests ever use.
func startUpstream(t testing.TB, h dns.HandlerFunc) netip.AddrPort {
	t.Helper()
	fd, _, tl, err := bind(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "upstream")
	pc, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: tl, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// answerA is an upstream that answers every A query with ip.
func answerA(ip string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		if r.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.ParseIP(ip),
			})
		}
		w.WriteMsg(m)
	}
}

// silentUpstream is a bound UDP socket that never answers.
func silentUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// closedUpstream is a loopback port with nothing on it: the kernel refuses.
func closedUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// listen adds a listener on a free loopback port and returns its address.
func listen(t *testing.T, s *Server, l Listener) string {
	t.Helper()
	if !l.Addr.IsValid() {
		l.Addr = netip.MustParseAddrPort("127.0.0.1:0")
	}
	addr, err := s.AddListener(l)
	if err != nil {
		t.Fatal(err)
	}
	return addr.String()
}

func exchange(t *testing.T, netw, addr string, q *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s query %s to %s: %v", netw, q.Question[0].Name, addr, err)
	}
	return resp
}
