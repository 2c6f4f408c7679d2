// Package netdns is stack's embedded DNS server and the only importer of
// github.com/miekg/dns: it serves a table of names per network (service
// names, container names, aliases) on each stack network's gateway address
// and forwards everything else to the configured upstream resolvers.
//
// It may import only the standard library and miekg/dns.
//
// # Use from the daemon
//
//	srv := netdns.New(netdns.Config{Logger: log})
//	go netdns.WatchResolvConf(ctx, "/etc/resolv.conf", time.Second, func(rc netdns.ResolvConf, err error) {
//		if err == nil {
//			srv.SetUpstreams(rc.Upstreams(gateways...)) // never forward to ourselves
//		}
//	})
//	for _, n := range networks { // on start and on every network change
//		srv.AddListener(netdns.Listener{
//			Network:  n.Name,
//			Addr:     netip.AddrPortFrom(n.Gateway, 53),
//			Internal: n.Internal,
//			Allow:    []netip.Prefix{n.Subnet},
//		})
//	}
//	srv.SetTable(netdns.NewTable(endpoints)) // on every containerd event
//	go srv.Serve(ctx)                         // closes everything when ctx ends
//
// Endpoints are plain values, one per container address per network:
// Running from the task state, Unhealthy from the healthcheck. Building a
// Table for a hundred containers takes microseconds, so the daemon rebuilds
// it from observed state on every event (level-based) and swaps it in
// atomically: listeners never restart and queries in flight finish on the
// table they began with.
//
// # What a container on network N gets
//
//   - A/AAAA from N's records only (the listener the query arrived on names
//     N): the container name, the service name (every running replica,
//     shuffled per answer), <service>.<project>, aliases, and each of those
//     as <name>.<N> like Docker. Names are case-insensitive.
//   - A replica whose healthcheck fails is left out while another replica
//     under that name is not failing; if all fail, all are answered.
//     Containers that are not running are never answered.
//   - A name that exists but has no address of the asked type (AAAA of an
//     IPv4-only container, MX, TXT…) is NOERROR with no data, authoritative,
//     never NXDOMAIN and never forwarded.
//   - PTR for container addresses answers the container name.
//   - Local answers carry AA and the configured TTL (default 2 s).
//   - A miss under <N>. when N is a compose network (<project>_<name>: it has
//     an underscore) is an authoritative NXDOMAIN, not forwarded.
//   - Anything else is forwarded (RA set), except on internal networks,
//     which answer REFUSED without RA: nothing leaves an internal network.
//   - EDNS0 is echoed (our size 1232, the client's DO bit); UDP replies are
//     truncated with TC to 512 bytes or the client's EDNS0 size, TCP replies
//     go whole. Unknown EDNS versions get BADVERS, responses are never
//     answered, other opcodes get NOTIMP.
//   - A client outside Listener.Allow gets REFUSED.
//
// # Forwarding
//
// Up to MaxUpstreams resolvers in order, each given UpstreamTimeout (at
// most 2 s) over UDP and again over TCP when the reply is truncated; a
// timeout, an error, SERVFAIL or REFUSED moves on to the next, within a
// total of twice UpstreamTimeout. An upstream that did not answer, and
// answered no other query meanwhile, is marked down and skipped, so a dead
// resolver costs its timeout once, not on every query, while one that only
// lost a query under a burst stays in use; one background probe per
// DownFor period brings a down one back. Each forward uses a UDP socket of
// its own (a fresh source port) and sends the query again when no reply
// came within 500 ms (at most three sends, within UpstreamTimeout). With no upstream left the answer is an
// immediate SERVFAIL. At most MaxForwards (default 1024, like Docker) are
// in flight; a burst beyond waits up to 100 ms for a slot, and SERVFAIL
// answers what still finds none (Stats.Busy counts them).
//
// # Speed
//
// UDP queries are read by a few goroutines per socket (one per core but
// one, at most 4; udpReaders says why one P stays spare), not one per
// packet. Each sleeps in recvmmsg on a blocking socket outside Go's
// netpoller, so a query wakes it straight from the kernel, and under load
// one call takes every datagram waiting and one sendmmsg sends their
// replies. The common queries — a name of the table, class IN, no
// EDNS0 options — are answered from and into wire format without
// allocating (fast.go); the rest goes through miekg/dns as before, with
// the same answers (FuzzServeDNS holds the two paths equal). TCP is served
// by miekg/dns.
package netdns
