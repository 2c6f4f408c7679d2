package ctrd

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// An attachment made of the bridge plugin with host-local leases and
// nothing else (every attachment that publishes no ports, on a network with
// subnet rules) is detached in this process: DEL of those two plugins is
// two processes to start and reap per container, and reaping them was a
// third of the CPU of the stack process in a `down` (perf: the kernel's
// release_task invalidating each child's /proc entries). What the plugins do
// on DEL is small and done here the same way, on the same files:
//
//   - bridge: delete the container's interface inside its netns, which takes
//     the veth's host end off the bridge with it; nothing when the netns is
//     gone; no iptables work without ipMasq;
//   - host-local: under its lock (flock of <dataDir>/<network>/lock), remove
//     the lease files holding "<id>\r\n<ifname>", or "<id>" as older
//     versions wrote them;
//   - libcni: remove the cached ADD result.
//
// ADD still runs the plugins, and so does DEL of any other conflist. If
// anything here fails, the plugins' DEL runs after it, and finds done what
// was done.

// inProcessDel is what DEL needs of a conflist it can do in process.
type inProcessDel struct {
	network  string // the conflist's name: host-local's directory, libcni's cache key
	leaseDir string
}

// bridgeOnlyDel says whether DEL of conflist can run in process: one
// plugin, bridge, without ipMasq or MAC spoof checking, with host-local.
func bridgeOnlyDel(conflist []byte) (inProcessDel, bool) {
	var conf struct {
		Name    string `json:"name"`
		Plugins []struct {
			Type        string `json:"type"`
			IPMasq      bool   `json:"ipMasq"`
			MacSpoofChk bool   `json:"macspoofchk"`
			IPAM        struct {
				Type    string `json:"type"`
				DataDir string `json:"dataDir"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if json.Unmarshal(conflist, &conf) != nil || len(conf.Plugins) != 1 || conf.Name == "" {
		return inProcessDel{}, false
	}
	p := conf.Plugins[0]
	if p.Type != "bridge" || p.IPMasq || p.MacSpoofChk || p.IPAM.Type != "host-local" || p.IPAM.DataDir == "" {
		return inProcessDel{}, false
	}
	return inProcessDel{network: conf.Name, leaseDir: filepath.Join(p.IPAM.DataDir, conf.Name)}, true
}

// delInProcess detaches the attachment as its plugins' DEL would; nsPath
// is empty when the netns is already gone.
func (c *Client) delInProcess(d inProcessDel, id, nsPath, ifName string) error {
	if nsPath != "" {
		if err := deleteLinkIn(nsPath, ifName); err != nil {
			return err
		}
	}
	if err := releaseLeases(d.leaseDir, id, ifName); err != nil {
		return err
	}
	cached := filepath.Join(c.stateDir(dirNetworks, dirCNICache), "results", fmt.Sprintf("%s-%s-%s", d.network, id, ifName))
	if err := os.Remove(cached); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// releaseLeases removes the leases host-local gave id's ifName, under the
// lock host-local takes.
func releaseLeases(dir, id, ifName string) error {
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDONLY|os.O_CREATE, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no lease was ever taken on this network
	}
	if err != nil {
		return fmt.Errorf("host-local lock: %w", err)
	}
	defer lock.Close()
	if err := flockRetry(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("host-local lock: %w", err)
	}
	defer func() { _ = flockRetry(int(lock.Fd()), unix.LOCK_UN) }()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("host-local leases: %w", err)
	}
	id = strings.TrimSpace(id)
	var byID []string
	found := false
	for _, e := range entries {
		if e.IsDir() || e.Name() == "lock" || strings.HasPrefix(e.Name(), "last_reserved_ip.") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			continue // released by someone else meanwhile
		}
		switch strings.TrimSpace(string(data)) {
		case id + "\r\n" + ifName:
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("release lease %s: %w", e.Name(), err)
			}
			found = true
		case id:
			byID = append(byID, path)
		}
	}
	if found {
		return nil
	}
	for _, path := range byID {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("release lease %s: %w", filepath.Base(path), err)
		}
	}
	return nil
}

func flockRetry(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// deleteLinkIn deletes the interface ifName in the netns at nsPath; one
// that is not there is already deleted, and so is a netns that is gone.
func deleteLinkIn(nsPath, ifName string) error {
	fd, err := rtnetlinkIn(nsPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	defer unix.Close(fd)
	err = rtnlDelLink(fd, ifName)
	if errors.Is(err, unix.ENODEV) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s in %s: %w", ifName, nsPath, err)
	}
	return nil
}

// rtnetlinkIn opens a route netlink socket in the netns at nsPath: a
// socket stays in the netns it was made in, so only its creation needs a
// thread inside the netns. That thread goes back to the original netns and
// is unlocked only if it could; otherwise it dies with its goroutine.
func rtnetlinkIn(nsPath string) (int, error) {
	ns, err := os.Open(nsPath)
	if err != nil {
		return -1, err
	}
	defer ns.Close()
	type made struct {
		fd  int
		err error
	}
	done := make(chan made, 1)
	go func() {
		runtime.LockOSThread()
		origin, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			done <- made{-1, err}
			return
		}
		defer origin.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- made{-1, fmt.Errorf("setns: %w", err)}
			return
		}
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if serr := unix.Setns(int(origin.Fd()), unix.CLONE_NEWNET); serr != nil {
			if err == nil {
				unix.Close(fd)
			}
			done <- made{-1, fmt.Errorf("return to the original netns: %w", serr)}
			return
		}
		runtime.UnlockOSThread()
		done <- made{fd, err}
	}()
	m := <-done
	return m.fd, m.err
}

// rtnlDelLink sends RTM_DELLINK for the interface named name and reads the
// kernel's answer.
func rtnlDelLink(fd int, name string) error {
	attr := append([]byte(name), 0)
	attrLen := unix.SizeofRtAttr + len(attr)
	msgLen := unix.SizeofNlMsghdr + unix.SizeofIfInfomsg + nlAlign(attrLen)
	msg := make([]byte, msgLen)
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(msgLen))
	ne.PutUint16(msg[4:], unix.RTM_DELLINK)
	ne.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(msg[8:], 1) // sequence
	// ifinfomsg stays zero: no index, the name says which link.
	a := msg[unix.SizeofNlMsghdr+unix.SizeofIfInfomsg:]
	ne.PutUint16(a[0:], uint16(attrLen))
	ne.PutUint16(a[2:], unix.IFLA_IFNAME)
	copy(a[unix.SizeofRtAttr:], attr)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != 1 || m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if len(m.Data) < 4 {
				return errors.New("netlink: short error message")
			}
			if code := int32(ne.Uint32(m.Data)); code != 0 {
				return unix.Errno(-code)
			}
			return nil
		}
	}
}

func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }
