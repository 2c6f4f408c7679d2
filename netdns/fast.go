package netdns

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"

	"github.com/miekg/dns"
)

// The fast path answers the queries containers send all day long — one
// question for a name in the table, class IN, no EDNS0 or an EDNS0 OPT
// without options — straight from the packet into the reply, in wire
// format, without allocating. It gives the same answers as the handler
// (FuzzServeDNS compares the two on every packet): flags, rcode, records,
// TTL, EDNS0 echo. Anything else, or a reply that would not fit the
// client's size, takes the slow path through miekg/dns (serveWire).

const (
	headerLen = 12
	optLen    = 11 // an OPT record without options
	aRRLen    = 16 // an A record whose owner is a pointer to the question
	// maxFastRecords is more A records than fit in ednsSize bytes.
	maxFastRecords = ednsSize / aRRLen

	flagQR = 1 << 15
	flagAA = 1 << 10
	flagRD = 1 << 8
	flagCD = 1 << 4
)

// fastQuery is what the fast path reads from a packet.
type fastQuery struct {
	id, flags uint16
	qtype     uint16
	question  []byte // the question section as sent (keeps its case)
	nameLen   int    // of the name in nameStorage
	edns, do  bool
	udpSize   uint16
	// nameStorage holds the name lower-cased in presentation form, with
	// its final dot (q.name() would make q escape to the heap).
	nameStorage [256]byte
}

// fastAnswer writes to out the reply to pkt, a UDP query from client, and
// returns it; ok is false when the query is not one the fast path answers.
func (h *handler) fastAnswer(pkt []byte, client netip.Addr, out []byte) (reply []byte, ok bool) {
	var q fastQuery
	if !q.parse(pkt) || !h.allowedAddr(client) {
		return nil, false
	}
	t := h.srv.table.Load()
	z := t.zone(h.network)
	if z == nil {
		return nil, false
	}
	name := q.nameStorage[:q.nameLen]
	out = q.appendHeader(out)
	a := z.hosts[string(name)]
	for _, other := range t.also[clientKey{h.network, client}] { // as alsoHosts, without a string
		if a != nil {
			break
		}
		if oz := t.zone(other); oz != nil {
			a = oz.hosts[string(name)]
		}
	}
	switch {
	case a != nil:
		out = h.appendHost(out, q.qtype, a)
	case q.qtype == dns.TypePTR && z.ptrWire[string(name)] != nil:
		out = h.appendPTR(out, z.ptrWire[string(name)])
	case z.origin != "" && underOrigin(name, z.origin):
		out[3] |= dns.RcodeNameError
	default:
		return nil, false // not ours: forwarded or refused by the handler
	}
	if q.edns {
		out = appendOPT(out, q.do)
		binary.BigEndian.PutUint16(out[10:], 1)
	}
	if len(out) > q.limit() {
		return nil, false // the handler truncates
	}
	h.srv.stats.queries.Add(1)
	h.srv.stats.local.Add(1)
	return out, true
}

// parse reads a query the fast path answers, or returns false.
func (q *fastQuery) parse(pkt []byte) bool {
	if len(pkt) < headerLen+5 {
		return false
	}
	q.id = binary.BigEndian.Uint16(pkt)
	q.flags = binary.BigEndian.Uint16(pkt[2:])
	qd, an, ns, ar := binary.BigEndian.Uint16(pkt[4:]), binary.BigEndian.Uint16(pkt[6:]), binary.BigEndian.Uint16(pkt[8:]), binary.BigEndian.Uint16(pkt[10:])
	if q.flags&flagQR != 0 || (q.flags>>11)&0xF != dns.OpcodeQuery || qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return false
	}
	off, ok := q.parseName(pkt, headerLen)
	if !ok || off+4 > len(pkt) {
		return false
	}
	q.qtype = binary.BigEndian.Uint16(pkt[off:])
	if class := binary.BigEndian.Uint16(pkt[off+2:]); class != dns.ClassINET && class != dns.ClassANY {
		return false
	}
	off += 4
	q.question = pkt[headerLen:off]
	if ar == 1 {
		if off, ok = q.parseOPT(pkt, off); !ok {
			return false
		}
	}
	return off == len(pkt)
}

// parseName lower-cases the question's name into q.nameStorage. Only plain
// hostname labels are taken: no compression, no bytes that need escaping.
func (q *fastQuery) parseName(pkt []byte, off int) (int, bool) {
	n := 0
	for {
		if off >= len(pkt) {
			return 0, false
		}
		l := int(pkt[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(pkt) || n+l+1 > 254 {
			return 0, false
		}
		for _, c := range pkt[off : off+l] {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				return 0, false
			}
			q.nameStorage[n] = c
			n++
		}
		q.nameStorage[n] = '.'
		n++
		off += l
	}
	if n == 0 {
		return 0, false // the root
	}
	q.nameLen = n
	return off, true
}

// parseOPT reads an EDNS0 version 0 OPT record without options.
func (q *fastQuery) parseOPT(pkt []byte, off int) (int, bool) {
	if off+optLen > len(pkt) || pkt[off] != 0 || binary.BigEndian.Uint16(pkt[off+1:]) != dns.TypeOPT {
		return 0, false
	}
	version := pkt[off+6]
	flags := binary.BigEndian.Uint16(pkt[off+7:])
	if version != 0 || binary.BigEndian.Uint16(pkt[off+9:]) != 0 {
		return 0, false
	}
	q.edns = true
	q.udpSize = binary.BigEndian.Uint16(pkt[off+3:])
	q.do = flags&0x8000 != 0
	return off + optLen, true
}

// limit is the largest UDP reply the client takes, as fit computes it.
func (q *fastQuery) limit() int {
	if !q.edns {
		return dns.MinMsgSize
	}
	return max(int(min(q.udpSize, ednsSize)), dns.MinMsgSize)
}

// appendHeader starts an authoritative NOERROR reply with the question.
func (q *fastQuery) appendHeader(out []byte) []byte {
	flags := flagQR | flagAA | q.flags&(flagRD|flagCD)
	out = binary.BigEndian.AppendUint16(out, q.id)
	out = binary.BigEndian.AppendUint16(out, uint16(flags))
	out = append(out, 0, 1, 0, 0, 0, 0, 0, 0) // one question; counts set later
	return append(out, q.question...)
}

// appendHost adds the records of a name that exists, as hostAnswer does.
func (h *handler) appendHost(out []byte, qtype uint16, a *addrs) []byte {
	n := 0
	switch qtype {
	case dns.TypeA:
		out, n = appendShuffled(out, a.raw4, dns.TypeA, h.srv.ttl)
	case dns.TypeAAAA:
		out, n = appendShuffled(out, a.raw6, dns.TypeAAAA, h.srv.ttl)
	case dns.TypeANY:
		var n6 int
		out, n = appendShuffled(out, a.raw4, dns.TypeA, h.srv.ttl)
		out, n6 = appendShuffled(out, a.raw6, dns.TypeAAAA, h.srv.ttl)
		n += n6
	}
	binary.BigEndian.PutUint16(out[6:], uint16(n))
	return out
}

// appendShuffled adds one record per address in raw, in a fresh random
// order, each owned by the question's name (a pointer to offset 12).
func appendShuffled(out, raw []byte, rrtype uint16, ttl uint32) ([]byte, int) {
	size := 4
	if rrtype == dns.TypeAAAA {
		size = 16
	}
	n := len(raw) / size
	if n > maxFastRecords {
		n = maxFastRecords + 1 // too big for any UDP reply: the caller falls back
	}
	var perm [maxFastRecords + 1]uint8
	for i := range n {
		perm[i] = uint8(i)
	}
	for i := n - 1; i > 0; i-- {
		j := rand.IntN(i + 1)
		perm[i], perm[j] = perm[j], perm[i]
	}
	for _, p := range perm[:n] {
		out = appendRRHeader(out, rrtype, ttl, uint16(size))
		out = append(out, raw[int(p)*size:int(p+1)*size]...)
	}
	return out, n
}

func appendRRHeader(out []byte, rrtype uint16, ttl uint32, rdlen uint16) []byte {
	out = append(out, 0xC0, headerLen) // the question's name
	out = binary.BigEndian.AppendUint16(out, rrtype)
	out = binary.BigEndian.AppendUint16(out, dns.ClassINET)
	out = binary.BigEndian.AppendUint32(out, ttl)
	return binary.BigEndian.AppendUint16(out, rdlen)
}

func (h *handler) appendPTR(out, target []byte) []byte {
	out = appendRRHeader(out, dns.TypePTR, h.srv.ttl, uint16(len(target)))
	out = append(out, target...)
	binary.BigEndian.PutUint16(out[6:], 1)
	return out
}

// appendOPT adds our EDNS0 record: size ednsSize, the client's DO bit.
func appendOPT(out []byte, do bool) []byte {
	out = append(out, 0)
	out = binary.BigEndian.AppendUint16(out, dns.TypeOPT)
	out = binary.BigEndian.AppendUint16(out, ednsSize)
	var flags uint16
	if do {
		flags = 0x8000
	}
	out = append(out, 0, 0) // extended rcode, version
	out = binary.BigEndian.AppendUint16(out, flags)
	return append(out, 0, 0)
}

// underOrigin reports whether name (lower-cased, with its final dot) is
// origin or below it, as dns.IsSubDomain does for plain labels.
func underOrigin(name []byte, origin string) bool {
	if len(name) == len(origin) {
		return string(name) == origin
	}
	return len(name) > len(origin) && name[len(name)-len(origin)-1] == '.' && string(name[len(name)-len(origin):]) == origin
}
