package netdns

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// handler answers the queries that arrive on one network's listeners, the
// way an http.Handler answers requests: from that network's records only,
// forwarding the rest unless the network is internal.
type handler struct {
	srv      *Server
	network  string
	internal bool
	allow    []netip.Prefix // empty: any client
}

// ServeDNS implements dns.Handler.
func (h *handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	h.srv.stats.queries.Add(1)
	resp := h.answer(w, r)
	if resp == nil {
		return
	}
	fit(resp, r, isUDP(w))
	if err := w.WriteMsg(resp); err != nil {
		h.srv.log.Debug("dns: write reply", "network", h.network, "err", err)
	}
}

// answer decides the reply to r; nil means no reply at all.
func (h *handler) answer(w dns.ResponseWriter, r *dns.Msg) *dns.Msg {
	switch {
	case r.Response:
		return nil // never answer answers: no reflection loops
	case !h.allowed(w.RemoteAddr()):
		h.srv.stats.refused.Add(1)
		return reply(r, dns.RcodeRefused)
	case len(r.Question) != 1:
		return reply(r, dns.RcodeFormatError)
	case r.Opcode != dns.OpcodeQuery:
		return reply(r, dns.RcodeNotImplemented)
	}
	if opt := r.IsEdns0(); opt != nil && opt.Version() != 0 {
		return reply(r, dns.RcodeBadVers)
	}
	q := r.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return reply(r, dns.RcodeRefused)
	}
	if resp := h.local(r, addrOf(w.RemoteAddr())); resp != nil {
		h.srv.stats.local.Add(1)
		return resp
	}
	if h.internal {
		h.srv.stats.refused.Add(1)
		return reply(r, dns.RcodeRefused)
	}
	return h.forward(r)
}

// local answers from the table, or returns nil when the name is not ours.
// A client on several networks also gets the names of its other ones.
func (h *handler) local(r *dns.Msg, client netip.Addr) *dns.Msg {
	t := h.srv.table.Load()
	z := t.zone(h.network)
	if z == nil {
		return nil
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	if a := z.hosts[name]; a != nil {
		return h.hostAnswer(r, a)
	}
	if a := t.alsoHosts(h.network, client, name); a != nil {
		return h.hostAnswer(r, a)
	}
	if q.Qtype == dns.TypePTR {
		if target, ok := z.ptr[name]; ok {
			resp := authoritative(r)
			resp.Answer = []dns.RR{&dns.PTR{Hdr: h.hdr(q.Name, dns.TypePTR), Ptr: target}}
			return resp
		}
	}
	if z.origin != "" && dns.IsSubDomain(z.origin, name) {
		resp := authoritative(r) // <anything>.<network> is ours alone
		resp.Rcode = dns.RcodeNameError
		return resp
	}
	return nil
}

// hostAnswer answers a name that exists: its addresses of the asked family
// in a fresh random order, or NOERROR with no data (never NXDOMAIN, never
// forwarded) when it has none of that family or the type is another one.
func (h *handler) hostAnswer(r *dns.Msg, a *addrs) *dns.Msg {
	resp := authoritative(r)
	q := r.Question[0]
	switch q.Qtype {
	case dns.TypeA:
		resp.Answer = h.records(q.Name, dns.TypeA, a.v4)
	case dns.TypeAAAA:
		resp.Answer = h.records(q.Name, dns.TypeAAAA, a.v6)
	case dns.TypeANY:
		resp.Answer = append(h.records(q.Name, dns.TypeA, a.v4), h.records(q.Name, dns.TypeAAAA, a.v6)...)
	}
	return resp
}

func (h *handler) records(owner string, qtype uint16, ips []net.IP) []dns.RR {
	rrs := make([]dns.RR, len(ips))
	for i, ip := range ips {
		if qtype == dns.TypeA {
			rrs[i] = &dns.A{Hdr: h.hdr(owner, qtype), A: ip}
		} else {
			rrs[i] = &dns.AAAA{Hdr: h.hdr(owner, qtype), AAAA: ip}
		}
	}
	rand.Shuffle(len(rrs), func(i, j int) { rrs[i], rrs[j] = rrs[j], rrs[i] })
	return rrs
}

func (h *handler) hdr(owner string, qtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: qtype, Class: dns.ClassINET, Ttl: h.srv.ttl}
}

func (h *handler) forward(r *dns.Msg) *dns.Msg {
	h.srv.stats.forwarded.Add(1)
	resp, err := h.srv.fwd.forward(h.srv.ctx, r)
	if err != nil {
		h.srv.stats.servfail.Add(1)
		h.srv.log.Debug("dns: forward", "network", h.network, "name", r.Question[0].Name, "err", err)
		resp = reply(r, dns.RcodeServerFailure)
	}
	resp.RecursionAvailable = true
	return resp
}

func (h *handler) allowed(remote net.Addr) bool {
	return h.allowedAddr(addrOf(remote))
}

func (h *handler) allowedAddr(ip netip.Addr) bool {
	if len(h.allow) == 0 {
		return true
	}
	for _, p := range h.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func addrOf(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

func isUDP(w dns.ResponseWriter) bool {
	_, tcp := w.LocalAddr().(*net.TCPAddr)
	return !tcp
}

// authoritative starts a NOERROR reply we are the authority for.
func authoritative(r *dns.Msg) *dns.Msg {
	resp := new(dns.Msg).SetReply(r)
	resp.Authoritative = true
	return resp
}

// reply starts a reply with rcode and nothing else.
func reply(r *dns.Msg, rcode int) *dns.Msg {
	resp := new(dns.Msg)
	resp.Id = r.Id
	resp.Response = true
	resp.Opcode = r.Opcode
	resp.RecursionDesired = r.RecursionDesired
	resp.CheckingDisabled = r.CheckingDisabled
	if len(r.Question) == 1 {
		resp.Question = []dns.Question{r.Question[0]}
	}
	resp.Rcode = rcode
	return resp
}

// fit gives resp the EDNS0 OPT the request asked for (or none) and, over
// UDP, truncates it with TC to the size the client can take: 512 bytes
// without EDNS0, its advertised size (capped at ours) with it. Over TCP the
// reply goes whole.
func fit(resp, r *dns.Msg, udp bool) {
	removeOPT(resp)
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		size = max(int(min(opt.UDPSize(), ednsSize)), dns.MinMsgSize)
		resp.SetEdns0(ednsSize, opt.Do()) // Pack puts an extended rcode in it
	} else if resp.Rcode > 0xF {
		resp.Rcode = dns.RcodeServerFailure // not expressible without EDNS0
	}
	if udp {
		resp.Truncate(size)
	} else {
		resp.Truncate(dns.MaxMsgSize)
	}
}

func removeOPT(m *dns.Msg) {
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	m.Extra = extra
}
