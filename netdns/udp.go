package netdns

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// maxSlowUDP bounds the queries one UDP listener hands to goroutines of
// their own at once (forwards, mostly); beyond it queries are dropped, as
// a busy resolver drops them, and the client retries.
const maxSlowUDP = 4096

// udpServer serves one UDP socket with a few reader goroutines of its own
// instead of miekg/dns's goroutine per packet: each reads a query, answers
// it in place when the fast path can (fast.go) and otherwise hands a copy
// to a goroutine that runs the handler on a dns.Msg (serveWire).
type udpServer struct {
	conn    *net.UDPConn
	local   *net.UDPAddr
	h       *handler
	closing atomic.Bool
	slow    atomic.Int64   // slow-path queries being answered
	readers sync.WaitGroup // the read loops
	workers sync.WaitGroup // the slow path's goroutines
	jobs    chan func()    // to an idle worker
	stop    chan struct{}  // closed by close: idle workers end
}

// workerIdle is how long a slow-path goroutine waits for more work before
// it ends. Reusing goroutines keeps their grown stacks: a forward needs
// more than a new goroutine starts with.
const workerIdle = time.Second

// udpReadBuffer is the socket receive buffer asked for (the kernel caps it
// at net.core.rmem_max): room for a burst of queries while the readers
// are busy, instead of drops.
const udpReadBuffer = 1 << 20

func newUDPServer(conn *net.UDPConn, h *handler) *udpServer {
	_ = conn.SetReadBuffer(udpReadBuffer) // best effort: the default still works
	return &udpServer{
		conn:  conn,
		local: conn.LocalAddr().(*net.UDPAddr),
		h:     h,
		jobs:  make(chan func()),
		stop:  make(chan struct{}),
	}
}

// udpReaders is how many goroutines read one socket: one per core, at most
// 4. A second reader waits its turn on the socket and takes over from the
// first: on 2 cores shared with dnsperf that raises the peak by a fifth
// to a third (about 55k → 70k queries/s on loopback) and costs latency at
// a moderate rate (p50 at 20k/s about 100 → 250 µs), a few µs per query
// when the server is idle.
func udpReaders() int { return min(runtime.GOMAXPROCS(0), 4) }

// start runs the read loops; failed is called once a loop stops on an
// error of the socket (its address went away), not on close.
func (u *udpServer) start(failed func(error)) {
	for range udpReaders() {
		u.readers.Go(func() { u.read(failed) })
	}
}

func (u *udpServer) read(failed func(error)) {
	buf := make([]byte, readSize) // larger datagrams arrive cut: garbage anyway
	out := make([]byte, 0, ednsSize)
	for {
		n, from, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if u.closing.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			failed(err)
			return
		}
		u.serve(buf[:n], from, out)
	}
}

// serve answers one datagram.
func (u *udpServer) serve(pkt []byte, from netip.AddrPort, out []byte) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if reply, ok := u.h.fastAnswer(pkt, from.Addr(), out[:0]); ok {
		if _, err := u.conn.WriteToUDPAddrPort(reply, from); err != nil {
			u.h.srv.log.Debug("dns: write reply", "network", u.h.network, "err", err)
		}
		return
	}
	if len(pkt) < headerLen || u.closing.Load() {
		return // no header: not even a FORMERR (miekg/dns drops these too)
	}
	if u.slow.Add(1) > maxSlowUDP {
		u.slow.Add(-1)
		return
	}
	p := append([]byte(nil), pkt...)
	u.dispatch(func() {
		defer u.slow.Add(-1)
		u.h.serveWire(p, &udpWriter{u: u, remote: net.UDPAddrFromAddrPort(from), to: from})
	})
}

// dispatch runs job on an idle worker, or on a new one.
func (u *udpServer) dispatch(job func()) {
	select {
	case u.jobs <- job:
	default:
		u.workers.Go(func() { u.work(job) })
	}
}

func (u *udpServer) work(job func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		job()
		idle.Reset(workerIdle)
		select {
		case job = <-u.jobs:
		case <-idle.C:
			return
		case <-u.stop:
			return
		}
	}
}

// close stops reading; wait then waits for the queries being answered.
func (u *udpServer) close() {
	if u.closing.Swap(true) {
		return
	}
	close(u.stop)
	u.conn.Close()
}

func (u *udpServer) wait() {
	u.readers.Wait()
	u.workers.Wait()
}

// serveWire does what miekg/dns's server does with a packet before and
// around its handler: drop responses, FORMERR or NOTIMP what the default
// accept function rejects or what does not unpack, else run ServeDNS.
func (h *handler) serveWire(pkt []byte, w dns.ResponseWriter) {
	if len(pkt) < headerLen {
		return
	}
	dh := dns.Header{
		Id:      binary.BigEndian.Uint16(pkt),
		Bits:    binary.BigEndian.Uint16(pkt[2:]),
		Qdcount: binary.BigEndian.Uint16(pkt[4:]),
		Ancount: binary.BigEndian.Uint16(pkt[6:]),
		Nscount: binary.BigEndian.Uint16(pkt[8:]),
		Arcount: binary.BigEndian.Uint16(pkt[10:]),
	}
	action := dns.DefaultMsgAcceptFunc(dh)
	req := new(dns.Msg)
	switch action {
	case dns.MsgIgnore:
		return
	case dns.MsgAccept:
		if err := req.Unpack(pkt); err == nil {
			h.ServeDNS(w, req)
			return
		}
		// What did unpack (the header, maybe the question) goes back.
	default:
		hdr := append([]byte(nil), pkt[:headerLen]...)
		clear(hdr[4:]) // the header alone, as miekg/dns answers a reject
		_ = req.Unpack(hdr)
	}
	opcode := req.Opcode
	req.SetRcodeFormatError(req)
	req.Zero = false
	if action == dns.MsgRejectNotImplemented {
		req.Opcode = opcode
		req.Rcode = dns.RcodeNotImplemented
	}
	req.Ns, req.Answer, req.Extra = nil, nil, nil
	h.srv.stats.queries.Add(1)
	if err := w.WriteMsg(req); err != nil {
		h.srv.log.Debug("dns: write reply", "network", h.network, "err", err)
	}
}

// udpWriter is the dns.ResponseWriter of one slow-path UDP query.
type udpWriter struct {
	u      *udpServer
	remote *net.UDPAddr
	to     netip.AddrPort
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.u.local }
func (w *udpWriter) RemoteAddr() net.Addr { return w.remote }

func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *udpWriter) Write(b []byte) (int, error) { return w.u.conn.WriteToUDPAddrPort(b, w.to) }
func (w *udpWriter) Close() error                { return nil }
func (w *udpWriter) TsigStatus() error           { return nil }
func (w *udpWriter) TsigTimersOnly(bool)         {}
func (w *udpWriter) Hijack()                     {}
