package netdns

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstreams makes a Config forwarding to addrs with a short timeout.
func upstreams(addrs ...netip.AddrPort) Config {
	return Config{Upstreams: addrs, UpstreamTimeout: 300 * time.Millisecond, DownFor: time.Hour}
}

func TestForwardedNameGetsUpstreamAnswer(t *testing.T) {
	s := newTestServer(t, upstreams(startUpstream(t, answerA("192.0.2.1"))))
	q := query("Example.COM", dns.TypeA)
	m := serve(t, handlerFor(s, "demo_default"), q, false)
	wantIPs(t, m, netip.MustParseAddr("192.0.2.1"))
	if !m.RecursionAvailable || m.Question[0].Name != "Example.COM." {
		t.Fatalf("RA=%v question %v: want RA and the client's question", m.RecursionAvailable, m.Question)
	}
	if st := s.Stats(); st.Forwarded != 1 || st.Local != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestForwardRoundTripOverUDPAndTCP(t *testing.T) {
	s := newTestServer(t, upstreams(startUpstream(t, answerA("192.0.2.7"))))
	addr := listen(t, s, Listener{Network: "demo_default"})
	for _, netw := range []string{"udp", "tcp"} {
		wantIPs(t, exchange(t, netw, addr, query("example.org", dns.TypeA)), netip.MustParseAddr("192.0.2.7"))
	}
}

func TestForwardFailsOverFromADeadUpstream(t *testing.T) {
	good := startUpstream(t, answerA("192.0.2.2"))
	for name, dead := range map[string]netip.AddrPort{"refusing": closedUpstream(t), "silent": silentUpstream(t)} {
		t.Run(name, func(t *testing.T) {
			s := newTestServer(t, upstreams(dead, good))
			h := handlerFor(s, "demo_default")
			start := time.Now()
			wantIPs(t, ask(t, h, "example.com", dns.TypeA), netip.MustParseAddr("192.0.2.2"))
			if first := time.Since(start); first > 2*time.Second {
				t.Fatalf("fail-over took %v", first)
			}
			// The dead upstream costs its timeout once, not per query: five
			// more tries of a silent one would take at least 1.5 s.
			start = time.Now()
			for range 5 {
				wantIPs(t, ask(t, h, "example.net", dns.TypeA), netip.MustParseAddr("192.0.2.2"))
			}
			if took := time.Since(start); took > time.Second {
				t.Fatalf("5 queries after the fail-over took %v: the dead upstream is still tried", took)
			}
			if st := s.Upstreams(); !st[0].Down || st[1].Down {
				t.Fatalf("upstream status %+v", st)
			}
		})
	}
}

func TestForwardFailsOverOnSERVFAIL(t *testing.T) {
	bad := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		w.WriteMsg(new(dns.Msg).SetRcode(r, dns.RcodeServerFailure))
	})
	s := newTestServer(t, upstreams(bad, startUpstream(t, answerA("192.0.2.3"))))
	wantIPs(t, ask(t, handlerFor(s, "demo_default"), "example.com", dns.TypeA), netip.MustParseAddr("192.0.2.3"))
}

func TestSilentUpstreamGivesFastSERVFAIL(t *testing.T) {
	s := newTestServer(t, upstreams(silentUpstream(t)))
	addr := listen(t, s, Listener{Network: "demo_default"})
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second} // the client's own timeout
	start := time.Now()
	m, _, err := c.Exchange(query("example.com", dns.TypeA), addr)
	if err != nil {
		t.Fatal(err)
	}
	wantRcode(t, m, dns.RcodeServerFailure)
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("SERVFAIL after %v; the client gives up after 5s", took)
	}
	start = time.Now()
	m, _, _ = c.Exchange(query("example.net", dns.TypeA), addr)
	wantRcode(t, m, dns.RcodeServerFailure)
	if took := time.Since(start); took > 250*time.Millisecond { // under one upstream timeout
		t.Fatalf("second query to a known-dead upstream took %v", took)
	}
}

func TestNoUpstreamGivesFastSERVFAIL(t *testing.T) {
	s := newTestServer(t, Config{})
	start := time.Now()
	wantRcode(t, ask(t, handlerFor(s, "demo_default"), "example.com", dns.TypeA), dns.RcodeServerFailure)
	if took := time.Since(start); took > 250*time.Millisecond {
		t.Fatalf("took %v", took)
	}
}

func TestDownUpstreamIsProbedBackUp(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.4"))
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up}, DownFor: 10 * time.Millisecond})
	s.fwd.upstreams.Load()
	(*s.fwd.upstreams.Load())[0].markDown(10 * time.Millisecond)
	h := handlerFor(s, "demo_default")
	wantRcode(t, ask(t, h, "example.com", dns.TypeA), dns.RcodeServerFailure)
	deadline := time.Now().Add(5 * time.Second)
	for s.Upstreams()[0].Down {
		if time.Now().After(deadline) {
			t.Fatal("upstream never probed back up")
		}
		ask(t, h, "example.com", dns.TypeA) // a query past DownFor starts the probe
		time.Sleep(5 * time.Millisecond)
	}
	wantIPs(t, ask(t, h, "example.com", dns.TypeA), netip.MustParseAddr("192.0.2.4"))
}

// bigUpstream answers with n A records over both transports; over UDP it
// sets TC when they do not fit the client's size.
func bigUpstream(n int) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		for i := range n {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(198, 51, 100, byte(i)),
			})
		}
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			m.Answer = nil
			m.Truncated = true
		}
		w.WriteMsg(m)
	}
}

func TestTruncatedUpstreamReplyIsRetriedOverTCP(t *testing.T) {
	s := newTestServer(t, upstreams(startUpstream(t, bigUpstream(120))))
	h := handlerFor(s, "demo_default")
	m := serve(t, h, query("many.example", dns.TypeA), true)
	if m.Truncated || len(m.Answer) != 120 {
		t.Fatalf("TC=%v with %d answers, want the 120 the upstream gave over TCP", m.Truncated, len(m.Answer))
	}
	udp := ask(t, h, "many.example", dns.TypeA) // the client is told to retry over TCP
	if !udp.Truncated {
		t.Fatal("an answer too big for UDP went without TC")
	}
}

func TestForwardsInFlightAreBounded(t *testing.T) {
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		arrived <- struct{}{}
		<-release
		answerA("192.0.2.5")(w, r)
	})
	cfg := upstreams(up)
	cfg.MaxForwards, cfg.UpstreamTimeout = 2, 2*time.Second
	s := newTestServer(t, cfg)
	h := handlerFor(s, "demo_default")

	var held sync.WaitGroup
	answers := make([]*dns.Msg, 2)
	for i := range 2 {
		held.Go(func() { answers[i] = ask(t, h, fmt.Sprintf("held%d.example", i), dns.TypeA) })
	}
	<-arrived
	<-arrived
	start := time.Now()
	wantRcode(t, ask(t, h, "overflow.example", dns.TypeA), dns.RcodeServerFailure)
	if took := time.Since(start); took > 250*time.Millisecond { // the held ones wait for release
		t.Fatalf("overflow SERVFAIL took %v", took)
	}
	if st := s.Stats(); st.Busy != 1 {
		t.Fatalf("busy %d, want 1", st.Busy)
	}
	wantIPs(t, ask(t, h, "web", dns.TypeA), web1, web2, web3) // local names never wait for forwards
	close(release)
	held.Wait()
	for _, m := range answers {
		wantIPs(t, m, netip.MustParseAddr("192.0.2.5"))
	}
}

func TestUpstreamsAreAtMostThreeAndReplaceable(t *testing.T) {
	s := New(Config{})
	var addrs []netip.AddrPort
	for i := range 5 {
		addrs = append(addrs, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)}), 53))
	}
	s.SetUpstreams(append(addrs, addrs[0]))
	if got := s.Upstreams(); len(got) != 3 || got[2].Addr != addrs[2] {
		t.Fatalf("upstreams %v", got)
	}
	(*s.fwd.upstreams.Load())[1].markDown(time.Hour)
	s.SetUpstreams(addrs[1:2])
	if got := s.Upstreams(); len(got) != 1 || !got[0].Down {
		t.Fatalf("kept upstream lost its state: %v", got)
	}
}

func TestCloseEndsForwardsInFlight(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release)
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		arrived <- struct{}{}
		<-release
	})
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up}}) // 2 s per upstream
	done := make(chan *dns.Msg)
	go func() {
		rec := newRecorder(false)
		handlerFor(s, "demo_default").ServeDNS(rec, query("slow.example", dns.TypeA))
		done <- rec.msg
	}()
	<-arrived
	start := time.Now()
	s.Close()
	m := <-done
	wantRcode(t, m, dns.RcodeServerFailure)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("forward outlived Close by %v", took)
	}
}

// An upstream that loses a query (a full socket buffer under a burst) but
// answers others meanwhile is not taken for dead: only that query fails.
func TestUpstreamThatLosesOneQueryStaysUp(t *testing.T) {
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if r.Question[0].Name != "lost.example." {
			answerA("192.0.2.6")(w, r)
		}
	})
	s := newTestServer(t, upstreams(up))
	h := handlerFor(s, "demo_default")
	lost := make(chan *dns.Msg)
	go func() {
		rec := newRecorder(false)
		h.ServeDNS(rec, query("lost.example", dns.TypeA))
		lost <- rec.msg
	}()
	deadline := time.After(2 * time.Second)
	for done := false; !done; {
		select {
		case m := <-lost:
			wantRcode(t, m, dns.RcodeServerFailure)
			done = true
		case <-deadline:
			t.Fatal("the lost query was never answered")
		default:
			wantIPs(t, ask(t, h, "kept.example", dns.TypeA), netip.MustParseAddr("192.0.2.6"))
			time.Sleep(20 * time.Millisecond)
		}
	}
	if st := s.Upstreams(); st[0].Down {
		t.Fatal("an answering upstream was marked down for one lost query")
	}
	wantIPs(t, ask(t, h, "after.example", dns.TypeA), netip.MustParseAddr("192.0.2.6"))
}

// A burst beyond MaxForwards waits briefly for a slot instead of failing.
func TestForwardBurstBeyondTheBoundWaitsForASlot(t *testing.T) {
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		time.Sleep(20 * time.Millisecond)
		answerA("192.0.2.10")(w, r)
	})
	cfg := upstreams(up)
	cfg.MaxForwards = 2
	s := newTestServer(t, cfg)
	h := handlerFor(s, "demo_default")
	var wg sync.WaitGroup
	answers := make([]*dns.Msg, 4) // two wait about 20 ms
	for i := range answers {
		wg.Go(func() { answers[i] = ask(t, h, fmt.Sprintf("burst%d.example", i), dns.TypeA) })
	}
	wg.Wait()
	for _, m := range answers {
		wantIPs(t, m, netip.MustParseAddr("192.0.2.10"))
	}
	if st := s.Stats(); st.Busy != 0 || st.ServFail != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A query the upstream drops (a full socket buffer) is sent again after
// resendAfter, within the upstream's timeout: the client gets its answer.
func TestDroppedForwardIsSentAgain(t *testing.T) {
	var mu sync.Mutex
	seen := map[uint16]bool{}
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		mu.Lock()
		first := !seen[r.Id]
		seen[r.Id] = true
		mu.Unlock()
		if !first {
			answerA("192.0.2.11")(w, r)
		}
	})
	cfg := upstreams(up)
	cfg.UpstreamTimeout = 2 * time.Second
	s := newTestServer(t, cfg)
	start := time.Now()
	wantIPs(t, ask(t, handlerFor(s, "demo_default"), "dropped.example", dns.TypeA), netip.MustParseAddr("192.0.2.11"))
	if took := time.Since(start); took < resendAfter || took > resendAfter+time.Second {
		t.Fatalf("answered after %v, want about %v (one resend)", took, resendAfter)
	}
}
