package netdns

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// maxSlowUDP bounds the queries one UDP listener hands to goroutines of
// their own at once (forwards, mostly); beyond it queries are dropped, as
// a busy resolver drops them, and the client retries.
const maxSlowUDP = 4096

// udpServer serves one UDP socket with a few reader goroutines of its own
// instead of miekg/dns's goroutine per packet. The socket is a plain
// blocking one outside Go's netpoller: each reader sleeps in recvmmsg, so
// a query wakes it straight from the kernel (no epoll_wait, no EAGAIN read,
// no goroutine hand-over), and under load one call takes every datagram
// waiting, up to udpBatch. A reader answers what the fast path can
// (fast.go) in place and sends those replies with one sendmmsg; any other
// query goes, copied, to a goroutine that runs the handler on a dns.Msg
// (serveWire).
type udpServer struct {
	fd      int // blocking, SO_RCVTIMEO udpWake; closed by wait
	local   *net.UDPAddr
	h       *handler
	closing atomic.Bool
	slow    atomic.Int64   // slow-path queries being answered
	readers sync.WaitGroup // the read loops
	workers sync.WaitGroup // the slow path's goroutines
	jobs    chan func()    // to an idle worker
	stop    chan struct{}  // closed by close: idle workers end
	fdOnce  sync.Once
}

// workerIdle is how long a slow-path goroutine waits for more work before
// it ends. Reusing goroutines keeps their grown stacks: a forward needs
// more than a new goroutine starts with.
const workerIdle = time.Second

// udpReadBuffer is the socket receive buffer asked for (the kernel caps it
// at net.core.rmem_max): room for a burst of queries while the readers
// are busy, instead of drops.
const udpReadBuffer = 1 << 20

// udpBatch is how many datagrams one recvmmsg takes at most. Its buffers
// (readSize each) are touched only as far as a burst fills them.
const udpBatch = 16

// udpWake bounds a reader's sleep in recvmmsg: close wakes readers at once
// (shutdown), this is the fallback.
const udpWake = 500 * time.Millisecond

// listenUDP opens a blocking UDP socket bound to addr.
func listenUDP(addr netip.AddrPort) (fd int, bound netip.AddrPort, err error) {
	opErr := func(op string, err error) error {
		return &net.OpError{Op: "listen", Net: "udp", Addr: net.UDPAddrFromAddrPort(addr), Err: os.NewSyscallError(op, err)}
	}
	family, sa, err := sockaddr(addr)
	if err != nil {
		return -1, bound, &net.OpError{Op: "listen", Net: "udp", Addr: net.UDPAddrFromAddrPort(addr), Err: err}
	}
	fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, bound, opErr("socket", err)
	}
	if family == unix.AF_INET6 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, udpReadBuffer) // best effort: the default still works
	tv := unix.NsecToTimeval(udpWake.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, bound, opErr("setsockopt", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, bound, opErr("bind", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, bound, opErr("getsockname", err)
	}
	switch got := got.(type) {
	case *unix.SockaddrInet4:
		bound = netip.AddrPortFrom(netip.AddrFrom4(got.Addr), uint16(got.Port))
	case *unix.SockaddrInet6:
		bound = netip.AddrPortFrom(netip.AddrFrom16(got.Addr).WithZone(addr.Addr().Zone()), uint16(got.Port))
	}
	return fd, bound, nil
}

// sockaddr is addr for bind and sendto.
func sockaddr(addr netip.AddrPort) (family int, sa unix.Sockaddr, err error) {
	a := addr.Addr()
	if a.Is4() || a.Is4In6() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: a.Unmap().As4()}, nil
	}
	sa6 := &unix.SockaddrInet6{Port: int(addr.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		ifi, err := net.InterfaceByName(z)
		if err != nil {
			return 0, nil, err
		}
		sa6.ZoneId = uint32(ifi.Index)
	}
	return unix.AF_INET6, sa6, nil
}

func newUDPServer(fd int, local netip.AddrPort, h *handler) *udpServer {
	return &udpServer{
		fd:    fd,
		local: net.UDPAddrFromAddrPort(local),
		h:     h,
		jobs:  make(chan func()),
		stop:  make(chan struct{}),
	}
}

// udpReaders is how many goroutines read one socket: one per core the
// process may use (GOMAXPROCS follows its CPU affinity) but one, at most
// 4, and at least one. Each sleeps in the kernel on the same socket and
// the kernel wakes one per datagram.
//
// A goroutine in a system call keeps its P (its right to run Go code) and
// takes it straight back when the call returns, unless the runtime's
// monitor (sysmon) takes it away for other work meanwhile, which it does
// after 20 µs whenever no other P is idle: then each query costs a wake-up
// of sysmon, of a thread that takes the P over, and a hand-over back,
// about half as much CPU again as the query itself, and sysmon keeps
// ticking every 20 µs. So one P is kept spare: readers are one fewer than
// GOMAXPROCS, and a process that may use one CPU only (GOMAXPROCS 1) gets
// GOMAXPROCS 2, once, when its first listener starts; its two Ps still
// share that one CPU.
var udpReaders = sync.OnceValue(func() int {
	procs := runtime.GOMAXPROCS(0)
	if procs == 1 {
		runtime.GOMAXPROCS(2)
		return 1
	}
	return min(procs-1, 4)
})

// start runs the read loops; failed is called once a loop stops on an
// error of the socket, not on close.
func (u *udpServer) start(failed func(error)) {
	for range udpReaders() {
		u.readers.Go(func() { u.read(failed) })
	}
}

// read is one read loop. It does not lock its OS thread: a goroutine in a
// blocking system call keeps its thread anyway, and a locked goroutine
// would need a thread hand-off whenever it could not get its P back at
// once.
func (u *udpServer) read(failed func(error)) {
	b := newMmsgBatch()
	for {
		n, err := b.recv(u.fd)
		if u.closing.Load() {
			return
		}
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			continue // udpWake passed, or a signal
		case err != nil:
			failed(os.NewSyscallError("recvmmsg", err))
			return
		case n == 1 && b.hdrs[0].Len == 0 && b.hdrs[0].Hdr.Namelen == 0:
			// No datagram and no sender: the socket was shut down for
			// reading by someone else than close.
			failed(errors.New("recvmmsg: the socket was shut down"))
			return
		}
		if u.serveBatch(b, n) {
			// The goroutine that took a slow query waits on this P's run
			// queue: let it run (and send its forward) before this
			// goroutine sleeps in recvmmsg with the P, instead of waiting
			// for another thread to steal it.
			runtime.Gosched()
		}
	}
}

// serveBatch answers the n datagrams b received: fast-path replies go out
// together, the rest to the slow path. It reports whether any went there.
func (u *udpServer) serveBatch(b *mmsgBatch, n int) (slow bool) {
	replies := 0
	for i := range n {
		h := &b.hdrs[i].Hdr
		pkt := b.bufs[i][:min(int(b.hdrs[i].Len), readSize)]
		from, ok := addrPortOf(b.names[i][:h.Namelen])
		if !ok {
			continue
		}
		if reply, ok := u.h.fastAnswer(pkt, from.Addr(), b.outs[i][:0]); ok {
			b.reply(replies, i, reply)
			replies++
			continue
		}
		slow = u.serveSlow(pkt, from) || slow
	}
	b.send(u.fd, replies, u.h)
	return slow
}

// serveSlow hands a copy of pkt to a slow-path goroutine, and reports
// whether it did.
func (u *udpServer) serveSlow(pkt []byte, from netip.AddrPort) bool {
	if len(pkt) < headerLen || u.closing.Load() {
		return false // no header: not even a FORMERR (miekg/dns drops these too)
	}
	if u.slow.Add(1) > maxSlowUDP {
		u.slow.Add(-1)
		return false
	}
	p := append([]byte(nil), pkt...)
	u.dispatch(func() {
		defer u.slow.Add(-1)
		u.h.serveWire(p, &udpWriter{u: u, remote: net.UDPAddrFromAddrPort(from), to: from})
	})
	return true
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

// close stops reading: the readers wake from recvmmsg at once (a shutdown
// for reading); wait then waits for the queries being answered and closes
// the socket.
func (u *udpServer) close() {
	if u.closing.Swap(true) {
		return
	}
	close(u.stop)
	_ = unix.Shutdown(u.fd, unix.SHUT_RD) // ENOTCONN on UDP, but it wakes the readers
}

func (u *udpServer) wait() {
	u.readers.Wait()
	u.workers.Wait()
	u.closeFD()
}

// closeFD closes the socket once: only when nothing reads or writes it
// any more, as its number may be reused at once.
func (u *udpServer) closeFD() { u.fdOnce.Do(func() { unix.Close(u.fd) }) }

// sendTo sends one slow-path reply.
func (u *udpServer) sendTo(b []byte, to netip.AddrPort) error {
	_, sa, err := sockaddr(to)
	if err != nil {
		return err
	}
	for {
		err = unix.Sendto(u.fd, b, 0, sa)
		if err != unix.EINTR {
			return err
		}
	}
}

// mmsgBatch holds one reader's recvmmsg and sendmmsg vectors and buffers,
// allocated once: the fast path allocates nothing per query.
type mmsgBatch struct {
	hdrs  [udpBatch]unix.Mmsghdr
	iovs  [udpBatch]unix.Iovec
	names [udpBatch][unix.SizeofSockaddrInet6]byte
	bufs  [udpBatch][]byte
	outs  [udpBatch][]byte
	// The replies: each points at its query's sender (names) and at its
	// out buffer.
	sendHdrs [udpBatch]unix.Mmsghdr
	sendIovs [udpBatch]unix.Iovec
}

func newMmsgBatch() *mmsgBatch {
	b := new(mmsgBatch)
	for i := range b.hdrs {
		b.bufs[i] = make([]byte, readSize) // larger datagrams arrive cut: garbage anyway
		b.outs[i] = make([]byte, 0, ednsSize)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(readSize)
		b.hdrs[i].Hdr.Name = &b.names[i][0]
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
		b.sendHdrs[i].Hdr.Iov = &b.sendIovs[i]
		b.sendHdrs[i].Hdr.SetIovlen(1)
	}
	return b
}

// recv waits for at least one datagram and takes what else is waiting.
func (b *mmsgBatch) recv(fd int) (int, error) {
	for i := range b.hdrs {
		b.hdrs[i].Hdr.Namelen = uint32(len(b.names[i]))
		b.hdrs[i].Hdr.Flags = 0
		b.hdrs[i].Len = 0
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])), udpBatch, unix.MSG_WAITFORONE, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// reply makes reply, the answer to datagram i, the j-th to send.
func (b *mmsgBatch) reply(j, i int, reply []byte) {
	b.sendIovs[j].Base = &reply[0]
	b.sendIovs[j].SetLen(len(reply))
	b.sendHdrs[j].Hdr.Name = &b.names[i][0]
	b.sendHdrs[j].Hdr.Namelen = b.hdrs[i].Hdr.Namelen
}

// send sends the first n replies; one that fails is logged and skipped.
func (b *mmsgBatch) send(fd, n int, h *handler) {
	for off := 0; off < n; {
		sent, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.sendHdrs[off])), uintptr(n-off), 0, 0, 0)
		switch {
		case errno == unix.EINTR:
		case errno != 0:
			h.srv.log.Debug("dns: write reply", "network", h.network, "err", errno)
			off++ // the first failed: the others may still go
		default:
			off += max(int(sent), 1)
		}
	}
}

// addrPortOf reads a sockaddr_in or sockaddr_in6 as recvmmsg filled it.
func addrPortOf(sa []byte) (netip.AddrPort, bool) {
	if len(sa) < 2 {
		return netip.AddrPort{}, false
	}
	switch binary.NativeEndian.Uint16(sa) {
	case unix.AF_INET:
		if len(sa) < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), binary.BigEndian.Uint16(sa[2:])), true
	case unix.AF_INET6:
		if len(sa) < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])).Unmap(), binary.BigEndian.Uint16(sa[2:])), true
	}
	return netip.AddrPort{}, false
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

func (w *udpWriter) Write(b []byte) (int, error) {
	if err := w.u.sendTo(b, w.to); err != nil {
		return 0, err
	}
	return len(b), nil
}
func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return nil }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}
