package netdns

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// ResolvConf is what matters of a resolv.conf(5) file.
type ResolvConf struct {
	Nameservers []netip.Addr // in file order, all of them
	Search      []string     // the last search or domain line wins, as in glibc
	Options     []string     // e.g. "ndots:2", "edns0"
}

// ParseResolvConf reads resolv.conf(5) text. Unknown lines are ignored and
// so are nameserver lines that are not IP addresses (glibc does the same),
// so it fails only when r does.
func ParseResolvConf(r io.Reader) (ResolvConf, error) {
	var rc ResolvConf
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(stripComment(sc.Text()))
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(f[1]); err == nil {
				rc.Nameservers = append(rc.Nameservers, a)
			}
		case "search", "domain":
			rc.Search = append([]string(nil), f[1:]...)
		case "options":
			rc.Options = append(rc.Options, f[1:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return ResolvConf{}, fmt.Errorf("read resolv.conf: %w", err)
	}
	return rc, nil
}

func stripComment(line string) string {
	if i := strings.IndexAny(line, "#;"); i >= 0 {
		return line[:i]
	}
	return line
}

// ReadResolvConf parses the file at path (usually /etc/resolv.conf).
func ReadResolvConf(path string) (ResolvConf, error) {
	f, err := os.Open(path)
	if err != nil {
		return ResolvConf{}, fmt.Errorf("read host resolvers: %w", err)
	}
	defer f.Close()
	return ParseResolvConf(f)
}

// Upstreams returns the first MaxUpstreams nameservers on port 53, leaving
// out any address in skip (stack's own gateways: forwarding to ourselves
// would loop). Loopback resolvers such as systemd-resolved's 127.0.0.53 are
// kept: the server runs in the host's network namespace and reaches them.
func (rc ResolvConf) Upstreams(skip ...netip.Addr) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range rc.Nameservers {
		if len(out) == MaxUpstreams {
			break
		}
		if !contains(skip, a) && !a.IsUnspecified() {
			out = append(out, netip.AddrPortFrom(a, 53))
		}
	}
	return out
}

func contains(list []netip.Addr, a netip.Addr) bool {
	for _, b := range list {
		if b == a {
			return true
		}
	}
	return false
}

// ContainerResolvConf is the resolv.conf of a container whose first network
// has gateway: the gateway as its only nameserver, the host's search
// domains, and ndots:0 so single names are asked as they are.
func ContainerResolvConf(gateway netip.Addr, host ResolvConf) []byte {
	var b bytes.Buffer
	b.WriteString("# written by stack: the DNS server on this network's gateway\n")
	fmt.Fprintf(&b, "nameserver %s\n", gateway)
	if len(host.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(host.Search, " "))
	}
	b.WriteString("options ndots:0\n")
	return b.Bytes()
}

// fileStamp identifies a version of a file cheaply.
type fileStamp struct {
	ino   uint64
	size  int64
	mtime int64 // unix nanoseconds
	err   bool  // the file could not be read
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{err: true}
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// WatchResolvConf calls apply with the parsed file at path now, and again
// each time its inode, size or modification time changes (a rename over it,
// as resolvconf and NetworkManager do, or an edit in place), checking every
// interval (<= 0 means 1 s) until ctx is done. A file that cannot be read
// is reported to apply as an error once per change; apply decides whether
// to keep the previous upstreams.
func WatchResolvConf(ctx context.Context, path string, interval time.Duration, apply func(ResolvConf, error)) {
	if interval <= 0 {
		interval = time.Second
	}
	last := stamp(path)
	apply(ReadResolvConf(path))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if now := stamp(path); now != last {
			last = now
			apply(ReadResolvConf(path))
		}
	}
}
