package netdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

const (
	// DefaultTTL is the TTL of local answers: small, so that clients that
	// honour it follow a recreated container (Docker uses 600 s).
	DefaultTTL = 2 * time.Second
	// DefaultUpstreamTimeout is how long one upstream gets to answer.
	DefaultUpstreamTimeout = 2 * time.Second
	// DefaultDownFor is how long an upstream that did not answer is skipped
	// before a background probe tries it again.
	DefaultDownFor = 2 * time.Second
	// DefaultMaxForwards bounds the forwarded queries in flight, as
	// Docker's resolver does; a burst beyond it waits briefly for a slot.
	DefaultMaxForwards = 1024

	ednsSize      = 1232 // the EDNS0 UDP size we advertise (DNS flag day 2020)
	readSize      = 4096 // UDP read buffer: anything larger is garbage
	shutdownGrace = 5 * time.Second
)

// ErrServerClosed is returned by AddListener after Close.
var ErrServerClosed = errors.New("dns server closed")

// Config tunes a Server. The zero Config is usable: TTL 2 s, no upstream.
type Config struct {
	TTL time.Duration // of local answers; whole seconds, <= 0 means DefaultTTL
	// Upstreams are the resolvers non-local names are forwarded to; only the
	// first MaxUpstreams are used. SetUpstreams replaces them at run time.
	Upstreams       []netip.AddrPort
	UpstreamTimeout time.Duration // per upstream; <= 0 or > 2 s means 2 s
	DownFor         time.Duration // <= 0 means DefaultDownFor
	MaxForwards     int           // <= 0 means DefaultMaxForwards
	Logger          *slog.Logger  // nil discards
}

// Listener is where a network's containers send their queries.
type Listener struct {
	Network string         // whose records are answered, as in Endpoint.Network
	Addr    netip.AddrPort // the network's gateway and port 53; port 0 picks one (tests)
	// Internal networks get no forwarding: a name that is not local is
	// answered REFUSED (no RA bit), so nothing leaves the network.
	Internal bool
	// Allow, when not empty, is the set of client prefixes answered (the
	// network's subnet): a container on another network that routes to this
	// gateway gets REFUSED instead of this network's names.
	Allow []netip.Prefix
}

// Server is stack's DNS server: UDP and TCP listeners on gateway addresses
// that come and go at run time, answering each network from its part of the
// current Table and forwarding the rest.
type Server struct {
	ctx    context.Context // cancelled by Close: ends forwards in flight
	cancel context.CancelFunc
	table  atomic.Pointer[Table]
	fwd    *forwarder
	ttl    uint32
	log    *slog.Logger
	stats  counters

	mu        sync.Mutex
	listeners map[netip.AddrPort]*listener // by bound address
	closed    bool
}

type listener struct {
	Listener
	udp      *udpServer
	tcp      *dns.Server
	done     chan struct{} // closed when both have returned
	failed   chan struct{} // closed when either stopped on its own
	failOnce sync.Once
}

// dead reports whether a socket of ln stopped serving on its own (its
// address went away, say): adding the listener again replaces it.
func (ln *listener) dead() bool {
	select {
	case <-ln.failed:
		return true
	default:
		return false
	}
}

// New returns a Server with an empty table and no listeners.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		ctx:       ctx,
		cancel:    cancel,
		fwd:       newForwarder(ctx, cfg.UpstreamTimeout, cfg.DownFor, cfg.MaxForwards),
		ttl:       uint32(cfg.TTL / time.Second),
		log:       cfg.Logger,
		listeners: map[netip.AddrPort]*listener{},
	}
	s.table.Store(&Table{})
	s.fwd.setUpstreams(cfg.Upstreams)
	return s
}

func (c Config) withDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.UpstreamTimeout <= 0 || c.UpstreamTimeout > DefaultUpstreamTimeout {
		c.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if c.DownFor <= 0 {
		c.DownFor = DefaultDownFor
	}
	if c.MaxForwards <= 0 {
		c.MaxForwards = DefaultMaxForwards
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// SetTable makes t the records answered from now on. Listeners keep running
// and queries in flight finish on the table they started with.
func (s *Server) SetTable(t *Table) {
	if t == nil {
		t = &Table{}
	}
	s.table.Store(t)
}

// Table returns the records answered now.
func (s *Server) Table() *Table { return s.table.Load() }

// SetUpstreams replaces the resolvers non-local names are forwarded to (the
// first MaxUpstreams). An empty list makes every forward a fast SERVFAIL.
func (s *Server) SetUpstreams(addrs []netip.AddrPort) { s.fwd.setUpstreams(addrs) }

// Upstreams reports the upstream resolvers in use and which are down.
func (s *Server) Upstreams() []UpstreamStatus { return s.fwd.status() }

// AddListener binds UDP and TCP on l.Addr and serves l.Network's records
// there until RemoveListener or Close; it returns once both sockets answer,
// with the address bound (the same port for both). Adding a listener that
// exists for the same network is a no-op, so a caller may re-add all of them
// on every change; a listener whose socket died is replaced. l.Addr must be
// a specific address, never 0.0.0.0 or ::.
func (s *Server) AddListener(l Listener) (netip.AddrPort, error) {
	if err := l.validate(); err != nil {
		return netip.AddrPort{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return netip.AddrPort{}, ErrServerClosed
	}
	if old, ok := s.listeners[l.Addr]; ok && old.dead() {
		old.shutdown()
		delete(s.listeners, l.Addr)
	}
	if old, ok := s.listeners[l.Addr]; ok && l.Addr.Port() != 0 {
		if !old.same(l) {
			return netip.AddrPort{}, fmt.Errorf("listen %s for network %s: already serving network %s there with other settings; remove that listener first", l.Addr, l.Network, old.Network)
		}
		return l.Addr, nil
	}
	ln, err := s.start(l)
	if err != nil {
		return netip.AddrPort{}, err
	}
	s.listeners[ln.Addr] = ln
	s.log.Info("dns: listening", "network", l.Network, "addr", ln.Addr.String(), "internal", l.Internal)
	return ln.Addr, nil
}

// same reports whether l asks for what ln serves.
func (ln *listener) same(l Listener) bool {
	return ln.Network == l.Network && ln.Internal == l.Internal && slices.Equal(ln.Allow, l.Allow)
}

func (l Listener) validate() error {
	a := l.Addr.Addr()
	switch {
	case l.Network == "":
		return errors.New("dns listener: the network name is empty")
	case !a.IsValid():
		return fmt.Errorf("dns listener for %s: no address; pass the network's gateway", l.Network)
	case a.IsUnspecified() || a.IsMulticast():
		return fmt.Errorf("dns listener for %s: %s is not a gateway address; stack never listens on every address", l.Network, a)
	}
	return nil
}

// start binds l's sockets and serves them, returning once both run.
func (s *Server) start(l Listener) (*listener, error) {
	fd, bound, tl, err := bind(l.Addr)
	if err != nil {
		return nil, fmt.Errorf("dns listener for network %s: %w", l.Network, err)
	}
	l.Addr = bound
	l.Allow = append([]netip.Prefix(nil), l.Allow...)
	h := &handler{srv: s, network: l.Network, internal: l.Internal, allow: l.Allow}
	ln := &listener{Listener: l, done: make(chan struct{}), failed: make(chan struct{})}
	ln.udp = newUDPServer(fd, bound, h)
	ln.tcp = &dns.Server{Listener: limitConns(tl, maxTCPConns), Handler: h, ReadTimeout: 2 * time.Second, MaxTCPQueries: -1}
	if err := ln.serve(s.log); err != nil {
		ln.udp.closeFD()
		tl.Close()
		return nil, fmt.Errorf("dns listener for network %s on %s: %w", l.Network, l.Addr, err)
	}
	return ln, nil
}

// serve runs the UDP readers and the TCP server and waits until TCP has
// started (UDP serves from the first read).
func (ln *listener) serve(log *slog.Logger) error {
	fail := func(proto string, err error) {
		log.Warn("dns: listener stopped", "network", ln.Network, "addr", ln.Addr.String(), "proto", proto, "err", err)
		ln.failOnce.Do(func() { close(ln.failed) })
	}
	ln.udp.start(func(err error) { fail("udp", err) })
	started := make(chan struct{})
	errc := make(chan error, 1)
	ln.tcp.NotifyStartedFunc = func() { close(started) }
	tcpDone := make(chan struct{})
	go func() {
		defer close(tcpDone)
		if err := ln.tcp.ActivateAndServe(); err != nil {
			fail("tcp", err)
			errc <- err
		}
	}()
	go func() {
		ln.udp.readers.Wait()
		<-tcpDone
		close(ln.done)
	}()
	select {
	case <-started:
		return nil
	case err := <-errc:
		ln.shutdown()
		return err
	}
}

// shutdown stops both servers, waiting a bounded time for queries in flight.
func (ln *listener) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	ln.udp.close()
	ln.tcp.ShutdownContext(ctx) // errors only if it never started
	ln.tcp.Listener.Close()
	inner := make(chan struct{})
	go func() { ln.udp.wait(); close(inner) }()
	for _, c := range []chan struct{}{ln.done, inner} {
		select {
		case <-c:
		case <-ctx.Done():
			return
		}
	}
}

// bind opens UDP and TCP on the same address and port. With port 0 it
// retries when the port the kernel gave UDP is taken for TCP.
func bind(addr netip.AddrPort) (udpFD int, bound netip.AddrPort, tl net.Listener, err error) {
	for attempt := 1; ; attempt++ {
		fd, bound, err := listenUDP(addr)
		if err != nil {
			return -1, bound, nil, hint(err)
		}
		tl, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(bound))
		if err == nil {
			return fd, bound, tl, nil
		}
		unix.Close(fd)
		if addr.Port() != 0 || attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) {
			return -1, bound, nil, hint(err)
		}
	}
}

// hint says what the user can do about a bind error.
func hint(err error) error {
	switch {
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%w (is the network's bridge up with its gateway address?)", err)
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%w (another DNS server, such as dnsmasq, holds this address and port)", err)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w (port 53 needs root or CAP_NET_BIND_SERVICE)", err)
	}
	return err
}

// RemoveListener stops every listener of network, waiting a bounded time
// for the queries they are answering. Removing what is not there is not an
// error.
func (s *Server) RemoveListener(network string) {
	s.mu.Lock()
	var stopping []*listener
	for addr, ln := range s.listeners {
		if ln.Network == network {
			stopping = append(stopping, ln)
			delete(s.listeners, addr)
		}
	}
	s.mu.Unlock()
	stopAll(stopping)
	if len(stopping) > 0 {
		s.log.Info("dns: stopped listening", "network", network)
	}
}

// Listeners lists the listeners serving now, with their bound addresses,
// sorted by network then address.
func (s *Server) Listeners() []Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Listener, 0, len(s.listeners))
	for _, ln := range s.listeners {
		out = append(out, ln.Listener)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Network != out[j].Network {
			return out[i].Network < out[j].Network
		}
		return out[i].Addr.Compare(out[j].Addr) < 0
	})
	return out
}

// Serve blocks until ctx is done, then closes the server. Listeners serve
// from the moment AddListener returns, before or during Serve.
func (s *Server) Serve(ctx context.Context) error {
	<-ctx.Done()
	s.Close()
	return nil
}

// Close stops every listener and ends forwards in flight; later AddListener
// calls fail.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.cancel()
	stopping := make([]*listener, 0, len(s.listeners))
	for _, ln := range s.listeners {
		stopping = append(stopping, ln)
	}
	clear(s.listeners)
	s.mu.Unlock()
	stopAll(stopping)
}

func stopAll(lns []*listener) {
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Go(ln.shutdown)
	}
	wg.Wait()
}

// Stats counts queries since New.
type Stats struct {
	Queries   uint64 // handled, of any kind
	Local     uint64 // answered from the table
	Forwarded uint64 // sent upstream
	ServFail  uint64 // forwards that failed (no upstream, busy, timeout)
	Busy      uint64 // of those, refused because MaxForwards were in flight
	Refused   uint64 // internal networks' non-local names, clients not allowed
}

type counters struct {
	queries, local, forwarded, servfail, refused atomic.Uint64
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Queries:   s.stats.queries.Load(),
		Local:     s.stats.local.Load(),
		Forwarded: s.stats.forwarded.Load(),
		ServFail:  s.stats.servfail.Load(),
		Busy:      s.fwd.busy.Load(),
		Refused:   s.stats.refused.Load(),
	}
}
