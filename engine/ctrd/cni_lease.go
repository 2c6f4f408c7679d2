package ctrd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"net/netip"

	"golang.org/x/sys/unix"
)

// host-local's leases, kept the way host-local keeps them, so that the
// plugin and this process can each release what the other reserved: in
// <dataDir>/<network>, one file per address named by the address and
// holding "<container id>\r\n<ifname>", last_reserved_ip.0 holding the last
// address given (the next search starts after it, round-robin), and every
// change under an flock of the file "lock".

// leaseRange is host-local's range: the subnet, its gateway (never given
// out) and the addresses given out, start and end included.
type leaseRange struct {
	subnet     netip.Prefix
	gateway    netip.Addr
	start, end netip.Addr
}

// conflistRange is one range of host-local's configuration.
type conflistRange struct {
	Subnet     string `json:"subnet"`
	Gateway    string `json:"gateway"`
	RangeStart string `json:"rangeStart"`
	RangeEnd   string `json:"rangeEnd"`
}

// parseLeaseRange reads one range of the conflist with host-local's
// defaults: the gateway is the subnet's first address, the range runs from
// there to the last address before the broadcast address.
func parseLeaseRange(r conflistRange) (leaseRange, bool) {
	subnet, err := netip.ParsePrefix(r.Subnet)
	if err != nil || !subnet.Addr().Is4() || subnet.Bits() > 30 {
		return leaseRange{}, false
	}
	subnet = subnet.Masked()
	first := subnet.Addr().Next()
	rng := leaseRange{subnet: subnet, gateway: first, start: first, end: broadcastOf(subnet).Prev()}
	for _, f := range []struct {
		s    string
		into *netip.Addr
	}{{r.Gateway, &rng.gateway}, {r.RangeStart, &rng.start}, {r.RangeEnd, &rng.end}} {
		if f.s == "" {
			continue
		}
		a, err := netip.ParseAddr(f.s)
		if err != nil || !subnet.Contains(a) {
			return leaseRange{}, false
		}
		*f.into = a
	}
	if rng.end.Less(rng.start) {
		return leaseRange{}, false
	}
	return rng, true
}

// broadcastOf is the last address of an IPv4 prefix.
func broadcastOf(p netip.Prefix) netip.Addr {
	return fromU32(u32(p.Addr()) | (1<<(32-p.Bits()) - 1))
}

func (r leaseRange) contains(a netip.Addr) bool {
	return r.subnet.Contains(a) && !a.Less(r.start) && !r.end.Less(a)
}

func (r leaseRange) String() string {
	return fmt.Sprintf("%s-%s", r.start, r.end)
}

// lockLeases takes host-local's lock on dir, creating dir when create is
// set; without it, a missing dir gives (nil, nil): nothing to release.
func lockLeases(dir string, create bool) (unlock func(), err error) {
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("host-local leases: %w", err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDONLY|os.O_CREATE, 0o600)
	if !create && errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("host-local lock: %w", err)
	}
	if err := flockRetry(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("host-local lock: %w", err)
	}
	return func() {
		_ = flockRetry(int(lock.Fd()), unix.LOCK_UN)
		lock.Close()
	}, nil
}

func flockRetry(fd int, how int) error {
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// lease is one lease file: its path, the address it names and who holds it.
type lease struct {
	path   string
	addr   netip.Addr // invalid for a name that is no address
	holder string     // the file's content, trimmed
}

// readLeases lists the lease files of dir, skipping the lock and the
// last-reserved files.
func readLeases(dir string) ([]lease, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("host-local leases: %w", err)
	}
	var out []lease
	for _, e := range entries {
		if e.IsDir() || e.Name() == "lock" || strings.HasPrefix(e.Name(), "last_reserved_ip.") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			continue // released meanwhile by a process that does not lock
		}
		addr, _ := netip.ParseAddr(e.Name())
		out = append(out, lease{path: path, addr: addr, holder: strings.TrimSpace(string(data))})
	}
	return out, nil
}

// leaseRefused is host-local's answer when it has no address to give (in
// its words): the plugins would refuse the same, so it is final.
type leaseRefused string

func (e leaseRefused) Error() string { return string(e) }

// reserveLease gives id's ifName an address of rng, as host-local's ADD
// does: the requested one if it is free, else the first free one after the
// last given, round the range.
func reserveLease(dir, id, ifName string, rng leaseRange, requested netip.Addr) (netip.Addr, error) {
	unlock, err := lockLeases(dir, true)
	if err != nil {
		return netip.Addr{}, err
	}
	defer unlock()
	id = strings.TrimSpace(id)
	if requested.IsValid() {
		switch {
		case !rng.contains(requested):
			return netip.Addr{}, leaseRefused(fmt.Sprintf("requested IP address %s is not in range set %s", requested, rng))
		case requested == rng.gateway:
			return netip.Addr{}, leaseRefused(fmt.Sprintf("requested ip %s is subnet's gateway", requested))
		}
		ok, err := takeLease(dir, id, ifName, requested)
		if err != nil {
			return netip.Addr{}, err
		}
		if !ok {
			return netip.Addr{}, leaseRefused(fmt.Sprintf("requested IP address %s is not available in range set %s", requested, rng))
		}
		return requested, nil
	}
	held, err := readLeases(dir)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, l := range held {
		if (l.holder == id+"\r\n"+ifName || l.holder == id) && rng.contains(l.addr) {
			return netip.Addr{}, leaseRefused(fmt.Sprintf("%s has been allocated to %s, duplicate allocation is not allowed", l.addr, id))
		}
	}
	start, end := u32(rng.start), u32(rng.end)
	size := end - start + 1
	next := start
	if data, err := os.ReadFile(filepath.Join(dir, "last_reserved_ip.0")); err == nil {
		if last, err := netip.ParseAddr(strings.TrimSpace(string(data))); err == nil && last.Is4() && rng.contains(last) {
			next = u32(last) + 1
			if next > end || next < start {
				next = start
			}
		}
	}
	for i := range size {
		addr := fromU32(start + (next-start+i)%size)
		if addr == rng.gateway {
			continue
		}
		ok, err := takeLease(dir, id, ifName, addr)
		if err != nil {
			return netip.Addr{}, err
		}
		if ok {
			return addr, nil
		}
	}
	return netip.Addr{}, leaseRefused(fmt.Sprintf("no IP addresses available in range set: %s", rng))
}

// takeLease creates addr's lease file for id's ifName, and records addr as
// the last given; false when addr is taken.
func takeLease(dir, id, ifName string, addr netip.Addr) (bool, error) {
	path := filepath.Join(dir, addr.String())
	f, err := os.OpenFile(path, os.O_RDWR|os.O_EXCL|os.O_CREATE, 0o600)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", addr, err)
	}
	if _, err := f.WriteString(id + "\r\n" + ifName); err != nil {
		f.Close()
		os.Remove(path)
		return false, fmt.Errorf("lease %s: %w", addr, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return false, fmt.Errorf("lease %s: %w", addr, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "last_reserved_ip.0"), []byte(addr.String()), 0o600); err != nil {
		return false, fmt.Errorf("lease %s: %w", addr, err)
	}
	return true, nil
}

// releaseLeases removes the leases of id's ifName, as host-local's DEL
// does: those naming both, or, when there are none, those naming id alone
// (as older versions of host-local wrote them).
func releaseLeases(dir, id, ifName string) error {
	unlock, err := lockLeases(dir, false)
	if err != nil || unlock == nil {
		return err
	}
	defer unlock()
	held, err := readLeases(dir)
	if err != nil {
		return err
	}
	id = strings.TrimSpace(id)
	for _, match := range []string{id + "\r\n" + ifName, id} {
		found := false
		for _, l := range held {
			if l.holder != match {
				continue
			}
			if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("release lease %s: %w", filepath.Base(l.path), err)
			}
			found = true
		}
		if found {
			return nil
		}
	}
	return nil
}
