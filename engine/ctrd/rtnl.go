package ctrd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// rtnl is a route netlink socket: the few link, address and route requests
// that attach and detach a container's interface in process (cni_attach.go,
// cni_del.go). A socket acts in the netns it was made in, whichever thread
// uses it later.
type rtnl struct {
	fd  int
	seq uint32
	buf []byte // answers are read into it
}

var ne = binary.NativeEndian

// rtnlHere opens a socket in the calling thread's netns (the host's: no
// thread of stack enters another netns but for a moment, locked).
func rtnlHere() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	return &rtnl{fd: fd}, nil
}

// rtnlIn opens a socket in the netns at nsPath, and runs inside (if not nil)
// on the thread while it is in that netns: what must be done from inside,
// such as writing the netns's own sysctls. The thread goes back to the
// original netns and is unlocked only if it could; otherwise it dies with
// its goroutine. A missing nsPath is an error that wraps os.ErrNotExist.
func rtnlIn(nsPath string, inside func() error) (*rtnl, error) {
	ns, err := os.Open(nsPath)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	type made struct {
		r   *rtnl
		err error
	}
	done := make(chan made, 1)
	go func() {
		runtime.LockOSThread()
		origin, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			done <- made{nil, err}
			return
		}
		defer origin.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- made{nil, fmt.Errorf("setns %s: %w", nsPath, err)}
			return
		}
		r, err := rtnlHere()
		if err == nil && inside != nil {
			if err = inside(); err != nil {
				r.close()
				r = nil
			}
		}
		if serr := unix.Setns(int(origin.Fd()), unix.CLONE_NEWNET); serr != nil {
			if r != nil {
				r.close()
			}
			done <- made{nil, fmt.Errorf("return to the original netns: %w", serr)}
			return
		}
		runtime.UnlockOSThread()
		done <- made{r, err}
	}()
	m := <-done
	return m.r, m.err
}

func (r *rtnl) close() { unix.Close(r.fd) }

// request sends one message and reads until its answer: the kernel's
// acknowledgement (nil), its error (a unix.Errno), or for a GET the
// answer's payload (valid until the next request).
func (r *rtnl) request(typ, flags uint16, body []byte) ([]byte, error) {
	r.seq++
	msg := make([]byte, unix.SizeofNlMsghdr+len(body))
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], typ)
	ne.PutUint16(msg[6:], flags|unix.NLM_F_REQUEST)
	ne.PutUint32(msg[8:], r.seq)
	copy(msg[unix.SizeofNlMsghdr:], body)
	if err := unix.Sendto(r.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, os.NewSyscallError("netlink send", err)
	}
	if r.buf == nil {
		r.buf = make([]byte, 32<<10)
	}
	for {
		n, _, err := unix.Recvfrom(r.fd, r.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, os.NewSyscallError("netlink receive", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(r.buf[:n])
		if err != nil {
			return nil, fmt.Errorf("netlink receive: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != r.seq {
				continue
			}
			if m.Header.Type != unix.NLMSG_ERROR {
				return m.Data, nil
			}
			if len(m.Data) < 4 {
				return nil, errors.New("netlink: short error message")
			}
			if code := int32(ne.Uint32(m.Data)); code != 0 {
				return nil, unix.Errno(-code)
			}
			return nil, nil
		}
	}
}

// nlMsg builds a request body: a fixed header, then attributes.
type nlMsg struct{ b []byte }

func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

func (m *nlMsg) attr(typ uint16, data []byte) {
	l := unix.SizeofRtAttr + len(data)
	a := make([]byte, nlAlign(l))
	ne.PutUint16(a[0:], uint16(l))
	ne.PutUint16(a[2:], typ)
	copy(a[unix.SizeofRtAttr:], data)
	m.b = append(m.b, a...)
}

func (m *nlMsg) str(typ uint16, s string) { m.attr(typ, append([]byte(s), 0)) }

func (m *nlMsg) u32(typ uint16, v uint32) {
	b := make([]byte, 4)
	ne.PutUint32(b, v)
	m.attr(typ, b)
}

// nest adds an attribute holding what fill adds.
func (m *nlMsg) nest(typ uint16, fill func(*nlMsg)) {
	var inner nlMsg
	fill(&inner)
	m.attr(typ|unix.NLA_F_NESTED, inner.b)
}

func ifInfo(index int32, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	ne.PutUint32(b[4:], uint32(index))
	ne.PutUint32(b[8:], flags)
	ne.PutUint32(b[12:], change)
	return b
}

// linkByName is an interface's index and flags.
func (r *rtnl) linkByName(name string) (index int32, flags uint32, err error) {
	m := nlMsg{b: ifInfo(0, 0, 0)}
	m.str(unix.IFLA_IFNAME, name)
	data, err := r.request(unix.RTM_GETLINK, 0, m.b)
	if err != nil {
		return 0, 0, err
	}
	if len(data) < unix.SizeofIfInfomsg {
		return 0, 0, errors.New("netlink: short link message")
	}
	return int32(ne.Uint32(data[4:])), ne.Uint32(data[8:]), nil
}

// deleteLink deletes the interface named name.
func (r *rtnl) deleteLink(name string) error {
	m := nlMsg{b: ifInfo(0, 0, 0)}
	m.str(unix.IFLA_IFNAME, name)
	_, err := r.request(unix.RTM_DELLINK, unix.NLM_F_ACK, m.b)
	return err
}

// addVeth creates a veth pair: name here, up, a port of the bridge at
// master; peer in the netns open at peerNS, with the MAC address mac.
func (r *rtnl) addVeth(name string, master int32, peer string, peerNS int, mac net.HardwareAddr) error {
	m := nlMsg{b: ifInfo(0, unix.IFF_UP, unix.IFF_UP)}
	m.str(unix.IFLA_IFNAME, name)
	m.u32(unix.IFLA_MASTER, uint32(master))
	m.nest(unix.IFLA_LINKINFO, func(info *nlMsg) {
		info.str(unix.IFLA_INFO_KIND, "veth")
		info.nest(unix.IFLA_INFO_DATA, func(data *nlMsg) {
			data.nest(vethInfoPeer, func(p *nlMsg) {
				p.b = append(p.b, ifInfo(0, 0, 0)...)
				p.str(unix.IFLA_IFNAME, peer)
				p.u32(unix.IFLA_NET_NS_FD, uint32(peerNS))
				p.attr(unix.IFLA_ADDRESS, mac)
			})
		})
	})
	_, err := r.request(unix.RTM_NEWLINK, unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL, m.b)
	return err
}

// setUp brings the interface at index up.
func (r *rtnl) setUp(index int32) error {
	_, err := r.request(unix.RTM_NEWLINK, unix.NLM_F_ACK, ifInfo(index, unix.IFF_UP, unix.IFF_UP))
	return err
}

// addAddress gives the interface at index an IPv4 address and prefix, with
// the subnet's broadcast address, as `ip addr add … brd +` does.
func (r *rtnl) addAddress(index int32, p netip.Prefix) error {
	b := make([]byte, unix.SizeofIfAddrmsg)
	b[0] = unix.AF_INET
	b[1] = byte(p.Bits())
	ne.PutUint32(b[4:], uint32(index))
	m := nlMsg{b: b}
	a := p.Addr().As4()
	m.attr(unix.IFA_LOCAL, a[:])
	m.attr(unix.IFA_ADDRESS, a[:])
	if p.Bits() < 31 {
		brd := broadcastOf(p).As4()
		m.attr(unix.IFA_BROADCAST, brd[:])
	}
	_, err := r.request(unix.RTM_NEWADDR, unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL, m.b)
	return err
}

// addRoute adds an IPv4 route to dst via gw out of the interface at index.
func (r *rtnl) addRoute(dst netip.Prefix, gw netip.Addr, index int32) error {
	b := make([]byte, unix.SizeofRtMsg)
	b[0] = unix.AF_INET
	b[1] = byte(dst.Bits())
	b[4] = unix.RT_TABLE_MAIN
	b[5] = unix.RTPROT_BOOT
	b[6] = unix.RT_SCOPE_UNIVERSE
	b[7] = unix.RTN_UNICAST
	m := nlMsg{b: b}
	if dst.Bits() > 0 {
		d := dst.Addr().As4()
		m.attr(unix.RTA_DST, d[:])
	}
	g := gw.As4()
	m.attr(unix.RTA_GATEWAY, g[:])
	m.u32(unix.RTA_OIF, uint32(index))
	_, err := r.request(unix.RTM_NEWROUTE, unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL, m.b)
	return err
}

// vethInfoPeer is VETH_INFO_PEER of linux/veth.h (not in x/sys/unix).
const vethInfoPeer = 1
