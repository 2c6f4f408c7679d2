package netdns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// MaxUpstreams is how many upstream resolvers are used, like glibc's MAXNS.
const MaxUpstreams = 3

var (
	// ErrNoUpstream: nothing to forward to (no nameserver in resolv.conf).
	ErrNoUpstream = errors.New("no upstream resolver configured")
	// ErrBusy: the bound on forwards in flight is reached.
	ErrBusy = errors.New("too many forwarded queries in flight")
	// ErrUpstreamsDown: every upstream failed to answer recently and is
	// skipped until a background probe sees it answer again.
	ErrUpstreamsDown = errors.New("every upstream resolver is down")
)

// forwarder sends queries to the upstream resolvers in order, failing over
// on a timeout, an error, SERVFAIL or REFUSED.
//
// An upstream that does not answer is marked down: queries skip it (a dead
// first resolver costs its timeout once, not once per query, unlike Docker
// and aardvark-dns) and a single background probe per downFor period sends
// it the current query to learn when it is back.
type forwarder struct {
	base      context.Context // probes end with it
	upstreams atomic.Pointer[[]*upstream]
	timeout   time.Duration // per upstream
	downFor   time.Duration
	sem       chan struct{} // a slot per forward in flight
	waiting   chan struct{} // a slot per forward waiting for one of sem
	tcp       *dns.Client
	busy      atomic.Uint64 // forwards refused: sem full for queueWait
}

// queueWait is how long a forward waits for a slot when MaxForwards are in
// flight (a burst, usually) before it is answered SERVFAIL. At most
// MaxForwards wait; beyond that the answer is SERVFAIL at once.
const queueWait = 100 * time.Millisecond

type upstream struct {
	addr      netip.AddrPort
	downUntil atomic.Int64 // unix nanoseconds; 0 while it answers
	lastReply atomic.Int64 // unix nanoseconds of its latest reply
}

func newForwarder(base context.Context, timeout, downFor time.Duration, maxInflight int) *forwarder {
	f := &forwarder{
		base:    base,
		timeout: timeout,
		downFor: downFor,
		sem:     make(chan struct{}, maxInflight),
		waiting: make(chan struct{}, maxInflight),
		tcp:     &dns.Client{Net: "tcp", Timeout: timeout},
	}
	f.upstreams.Store(&[]*upstream{})
	return f
}

// setUpstreams keeps the first MaxUpstreams distinct valid addresses and the
// down state of those already known.
func (f *forwarder) setUpstreams(addrs []netip.AddrPort) {
	old := map[netip.AddrPort]*upstream{}
	for _, u := range *f.upstreams.Load() {
		old[u.addr] = u
	}
	var ups []*upstream
	seen := map[netip.AddrPort]bool{}
	for _, a := range addrs {
		if !a.IsValid() || a.Port() == 0 || seen[a] || len(ups) == MaxUpstreams {
			continue
		}
		seen[a] = true
		u := old[a]
		if u == nil {
			u = &upstream{addr: a}
		}
		ups = append(ups, u)
	}
	f.upstreams.Store(&ups)
}

// forward returns the first usable upstream reply to r, with r's ID and
// question, or an error (the caller answers SERVFAIL).
func (f *forwarder) forward(ctx context.Context, r *dns.Msg) (*dns.Msg, error) {
	ups := *f.upstreams.Load()
	if len(ups) == 0 {
		return nil, ErrNoUpstream
	}
	if !f.acquire(ctx) {
		f.busy.Add(1)
		return nil, ErrBusy
	}
	defer func() { <-f.sem }()
	ctx, cancel := context.WithTimeout(ctx, 2*f.timeout)
	defer cancel()
	q := upstreamQuery(r)
	var fallback *dns.Msg
	var errs []error
	for _, u := range ups {
		if u.down() {
			f.probe(u, q)
			errs = append(errs, fmt.Errorf("%s: %w", u.addr, errMarkedDown))
			continue
		}
		sent := time.Now()
		resp, err := f.exchange(ctx, q, u.addr)
		if err != nil && ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.addr, err))
			break // out of time: not this upstream's fault alone
		}
		if err != nil {
			if !u.answeredSince(sent) { // silent, not just one query lost
				u.markDown(f.downFor)
			}
			errs = append(errs, fmt.Errorf("%s: %w", u.addr, err))
			continue
		}
		u.markUp()
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			fallback = resp
			continue
		}
		return clientReply(resp, r), nil
	}
	if fallback != nil {
		return clientReply(fallback, r), nil
	}
	if allMarkedDown(errs) {
		return nil, ErrUpstreamsDown
	}
	return nil, fmt.Errorf("forward %s: %w", r.Question[0].Name, errors.Join(errs...))
}

// acquire takes a slot for one forward, waiting up to queueWait for one
// when all are taken and fewer than MaxForwards others wait too.
func (f *forwarder) acquire(ctx context.Context) bool {
	select {
	case f.sem <- struct{}{}:
		return true
	default:
	}
	select {
	case f.waiting <- struct{}{}:
		defer func() { <-f.waiting }()
	default:
		return false
	}
	wait := time.NewTimer(queueWait)
	defer wait.Stop()
	select {
	case f.sem <- struct{}{}:
		return true
	case <-wait.C:
	case <-ctx.Done():
	}
	return false
}

var errMarkedDown = errors.New("skipped, did not answer recently")

func allMarkedDown(errs []error) bool {
	for _, err := range errs {
		if !errors.Is(err, errMarkedDown) {
			return false
		}
	}
	return true
}

// exchange asks addr over UDP and again over TCP when the reply is truncated.
func (f *forwarder) exchange(ctx context.Context, q *dns.Msg, addr netip.AddrPort) (*dns.Msg, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	resp, err := exchangeUDP(ctx, q, addr)
	if err == nil && resp.Truncated {
		resp, err = exchangeOn(ctx, f.tcp, q, addr)
	}
	if err != nil {
		return nil, err
	}
	if !sameQuestion(resp, q) {
		return nil, errors.New("reply does not match the question")
	}
	return resp, nil
}

// exchangeOn is c.ExchangeContext that also ends when ctx is cancelled, not
// only at its deadline.
func exchangeOn(ctx context.Context, c *dns.Client, q *dns.Msg, addr netip.AddrPort) (*dns.Msg, error) {
	conn, err := c.DialContext(ctx, addr.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, q, conn)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	return resp, nil
}

// exchangeUDP sends q to addr from a socket of its own (a fresh random
// port per query, like the resolvers that resist spoofing) and reads until
// the reply with q's ID comes or ctx ends. A query unanswered after
// resendAfter is sent again (a burst can overflow the upstream's socket
// buffer); the first reply to either counts.
func exchangeUDP(ctx context.Context, q *dns.Msg, addr netip.AddrPort) (*dns.Msg, error) {
	bp := udpBuffers.Get().(*[]byte)
	defer udpBuffers.Put(bp)
	wire, err := q.PackBuffer((*bp)[:readSize])
	if err != nil {
		return nil, err
	}
	buf := (*bp)[readSize:]
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	deadline, _ := ctx.Deadline()
	for sends := 0; ; {
		if _, err := conn.Write(wire); err != nil {
			return nil, ctxErr(ctx, err)
		}
		sends++
		conn.SetReadDeadline(resendDeadline(deadline, sends))
		resp, err := readReply(conn, buf, q.Id)
		if err == nil || ctx.Err() != nil || !errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(deadline) {
			return resp, ctxErr(ctx, err)
		}
	}
}

// resendAfter is how long a forward waits for its reply before sending the
// query again, at most maxSends times in all.
const (
	resendAfter = 500 * time.Millisecond
	maxSends    = 3
)

// resendDeadline is when to stop waiting for the reply to send number
// sends: resendAfter later, or the forward's deadline for the last send.
func resendDeadline(deadline time.Time, sends int) time.Time {
	if next := time.Now().Add(resendAfter); sends < maxSends && (deadline.IsZero() || next.Before(deadline)) {
		return next
	}
	return deadline
}

// readReply reads until the reply with id comes, skipping strays.
func readReply(conn *net.UDPConn, buf []byte, id uint16) (*dns.Msg, error) {
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		if n < headerLen || binary.BigEndian.Uint16(buf) != id {
			continue // a stray or a late reply: not ours
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(buf[:n]); err != nil { // copies: buf goes back to the pool
			return nil, fmt.Errorf("unpack reply: %w", err)
		}
		return resp, nil
	}
}

// udpBuffers hold one forward's query and its reply.
var udpBuffers = sync.Pool{New: func() any { b := make([]byte, 2*readSize); return &b }}

// ctxErr says that err came from ctx ending, when it did.
func ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
}

// probe sends q to a down upstream in the background, at most once per
// downFor period per upstream, and marks it up when it answers.
func (f *forwarder) probe(u *upstream, q *dns.Msg) {
	due := u.downUntil.Load()
	if due == 0 || time.Now().UnixNano() < due {
		return
	}
	if !u.downUntil.CompareAndSwap(due, time.Now().Add(f.downFor).UnixNano()) {
		return // another query is probing
	}
	q = q.Copy() // the caller goes on using its own
	go func() {
		ctx, cancel := context.WithTimeout(f.base, f.timeout)
		defer cancel()
		if _, err := f.exchange(ctx, q, u.addr); err == nil {
			u.markUp()
		}
	}()
}

// down reports whether queries skip u.
func (u *upstream) down() bool { return u.downUntil.Load() != 0 }

func (u *upstream) markDown(d time.Duration) { u.downUntil.Store(time.Now().Add(d).UnixNano()) }

// markUp records a reply from u.
func (u *upstream) markUp() {
	if u.downUntil.Load() != 0 {
		u.downUntil.Store(0)
	}
	u.lastReply.Store(time.Now().UnixNano())
}

// answeredSince reports whether u replied to any query after t: a query
// of ours that timed out then was lost (a full socket buffer under a
// burst), and u is not down.
func (u *upstream) answeredSince(t time.Time) bool { return u.lastReply.Load() > t.UnixNano() }

// upstreamQuery copies r with a fresh ID (the client's is not ours to reuse)
// and our own EDNS0 record so large answers come back over UDP.
func upstreamQuery(r *dns.Msg) *dns.Msg {
	q := r.Copy()
	q.Id = dns.Id()
	do := false
	if opt := r.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	removeOPT(q)
	q.SetEdns0(ednsSize, do)
	return q
}

// clientReply gives resp the client's ID and question back; fit sets the
// client's EDNS0 and size later.
func clientReply(resp, r *dns.Msg) *dns.Msg {
	resp.Id = r.Id
	resp.Question = []dns.Question{r.Question[0]}
	return resp
}

func sameQuestion(resp, q *dns.Msg) bool {
	if len(resp.Question) != 1 {
		return false
	}
	a, b := resp.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// UpstreamStatus is one upstream resolver as the server sees it.
type UpstreamStatus struct {
	Addr netip.AddrPort
	Down bool // did not answer recently; skipped until a probe sees it answer
}

func (f *forwarder) status() []UpstreamStatus {
	ups := *f.upstreams.Load()
	out := make([]UpstreamStatus, len(ups))
	for i, u := range ups {
		out[i] = UpstreamStatus{Addr: u.addr, Down: u.downUntil.Load() != 0}
	}
	return out
}
