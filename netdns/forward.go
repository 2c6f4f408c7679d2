package netdns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
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
	sem       chan struct{}
	udp, tcp  *dns.Client
}

type upstream struct {
	addr      netip.AddrPort
	downUntil atomic.Int64 // unix nanoseconds; 0 while it answers
}

func newForwarder(base context.Context, timeout, downFor time.Duration, maxInflight int) *forwarder {
	f := &forwarder{
		base:    base,
		timeout: timeout,
		downFor: downFor,
		sem:     make(chan struct{}, maxInflight),
		udp:     &dns.Client{Net: "udp", Timeout: timeout, UDPSize: ednsSize},
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
	select {
	case f.sem <- struct{}{}:
		defer func() { <-f.sem }()
	default:
		return nil, ErrBusy
	}
	ups := *f.upstreams.Load()
	if len(ups) == 0 {
		return nil, ErrNoUpstream
	}
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
		resp, err := f.exchange(ctx, q, u.addr)
		if err != nil && ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.addr, err))
			break // out of time: not this upstream's fault alone
		}
		if err != nil {
			u.markDown(f.downFor)
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
	resp, err := exchangeOn(ctx, f.udp, q, addr)
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
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return resp, err
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
func (u *upstream) markUp()                  { u.downUntil.Store(0) }

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
