package ctrd

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/stackdev/stack/engine"
)

// subnetPool is where free /24 subnets are taken from when a network does
// not name one.
var subnetPool = netip.MustParsePrefix("10.89.0.0/16")

// usedPrefix is a subnet already in use on the host, and by what.
type usedPrefix struct {
	prefix netip.Prefix
	owner  string // "network X" or "host route on eth0"
}

// chooseSubnet checks the subnet the spec names against the other networks,
// or picks the first free /24 of the pool that overlaps neither another
// network nor a host route or address.
func (c *Client) chooseSubnet(spec engine.NetworkSpec, others []networkRecord) (netip.Prefix, error) {
	used := networkPrefixes(others)
	if spec.Subnet != "" {
		p, err := netip.ParsePrefix(spec.Subnet)
		if err != nil || !p.Addr().Is4() {
			return p, fmt.Errorf("network %s: subnet %q is not an IPv4 CIDR", spec.Name, spec.Subnet)
		}
		p = p.Masked()
		if u, ok := overlapping(p, used); ok {
			return p, fmt.Errorf("network %s: subnet %s overlaps %s (%s): choose another subnet", spec.Name, p, u.owner, u.prefix)
		}
		return p, nil
	}
	used = append(used, hostPrefixes()...)
	base := subnetPool.Addr().As4()
	for i := 1; i < 256; i++ {
		base[2] = byte(i)
		p := netip.PrefixFrom(netip.AddrFrom4(base), 24)
		if _, ok := overlapping(p, used); !ok {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("network %s: no free /24 left in %s: remove unused networks or give a subnet", spec.Name, subnetPool)
}

func overlapping(p netip.Prefix, used []usedPrefix) (usedPrefix, bool) {
	for _, u := range used {
		if u.prefix.Overlaps(p) {
			return u, true
		}
	}
	return usedPrefix{}, false
}

func networkPrefixes(recs []networkRecord) []usedPrefix {
	var out []usedPrefix
	for _, r := range recs {
		if p, err := netip.ParsePrefix(r.Subnet); err == nil {
			out = append(out, usedPrefix{p, "network " + r.Name})
		}
	}
	return out
}

// hostPrefixes returns the host's IPv4 routes (except the default route)
// and the networks of its interface addresses.
func hostPrefixes() []usedPrefix {
	out := routePrefixes()
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil {
				continue
			}
			if p, err := netip.ParsePrefix(ipn.String()); err == nil {
				out = append(out, usedPrefix{p.Masked(), "address on " + ifc.Name})
			}
		}
	}
	return out
}

// routePrefixes parses /proc/net/route: destination and mask are
// little-endian hex.
func routePrefixes() []usedPrefix {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []usedPrefix
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		dst, err1 := hex.DecodeString(fields[1])
		mask, err2 := hex.DecodeString(fields[7])
		if err1 != nil || err2 != nil || len(dst) != 4 || len(mask) != 4 {
			continue
		}
		var a, m [4]byte
		binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(dst))
		binary.BigEndian.PutUint32(m[:], binary.LittleEndian.Uint32(mask))
		bits, _ := net.IPMask(m[:]).Size()
		if bits == 0 {
			continue // default route
		}
		out = append(out, usedPrefix{netip.PrefixFrom(netip.AddrFrom4(a), bits).Masked(), "host route on " + fields[0]})
	}
	return out
}
