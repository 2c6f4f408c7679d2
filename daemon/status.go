package daemon

import (
	"os"
	"sort"
	"time"

	"github.com/stackdev/stack/netdns"
)

// Status is what `stack daemon status` shows: what the daemon serves, where,
// and how well it keeps up.
type Status struct {
	Info
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
	// Networks are every stack network with its listener and names.
	Networks []NetworkStatus `json:"networks"`
	// Upstreams are where names that are not local are forwarded.
	Upstreams     []UpstreamStatus `json:"upstreams"`
	UpstreamsFrom string           `json:"upstreamsFrom"` // "config" or the resolv.conf path
	UpstreamsErr  string           `json:"upstreamsError,omitempty"`
	DNS           netdns.Stats     `json:"dns"`
	Refresh       RefreshStats     `json:"refresh"`
	EventsErr     string           `json:"eventsError,omitempty"`
	// Restarts are the containers with a restart policy.
	Restarts []RestartStatus `json:"restarts,omitempty"`
}

// RestartStatus is one container's restart policy as the daemon enforces it.
type RestartStatus struct {
	Container string    `json:"container"`
	Policy    string    `json:"policy"`
	Count     int       `json:"count"`          // restarts since the user's last start
	Last      string    `json:"last,omitempty"` // the last decision, why
	Next      time.Time `json:"next,omitzero"`  // when a scheduled restart runs
}

// NetworkStatus is one network as the DNS server serves it.
type NetworkStatus struct {
	Name     string `json:"name"`
	Subnet   string `json:"subnet"`
	Gateway  string `json:"gateway"`
	Internal bool   `json:"internal,omitempty"`
	Listen   string `json:"listen,omitempty"` // bound address, UDP and TCP
	Error    string `json:"error,omitempty"`  // why it does not listen
	Names    []Name `json:"names"`
}

// Name is one name answered on a network, with the addresses answered now
// (after the health rule).
type Name struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
}

// UpstreamStatus is one upstream resolver.
type UpstreamStatus struct {
	Addr string `json:"addr"`
	Down bool   `json:"down,omitempty"`
}

// RefreshStats say how the answers follow the engine.
type RefreshStats struct {
	Count uint64 `json:"count"`
	// Patches counts the publications of containers observed alone, after
	// their own event, between refreshes.
	Patches      uint64        `json:"patches"`
	Last         time.Time     `json:"last"`
	LastDuration time.Duration `json:"lastDuration"` // one Observe plus the swap
	// LastEventLatency is from the engine's event to the answers showing it,
	// by a patch or a full refresh, whichever showed it.
	LastEventLatency time.Duration `json:"lastEventLatency"`
	MaxEventLatency  time.Duration `json:"maxEventLatency"`
	LastError        string        `json:"lastError,omitempty"`
}

// Status reports what the daemon serves now.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := Status{
		Info: d.cfg.Info, PID: os.Getpid(), Since: d.since,
		DNS: d.dns.Stats(), Refresh: d.stats, EventsErr: d.eventsErr,
		UpstreamsFrom: d.cfg.ResolvConf, UpstreamsErr: d.resolvErr,
		Restarts: d.restartStatus,
	}
	if len(d.cfg.Upstreams) > 0 {
		st.UpstreamsFrom = "config"
	}
	for _, u := range d.dns.Upstreams() {
		st.Upstreams = append(st.Upstreams, UpstreamStatus{Addr: u.Addr.String(), Down: u.Down})
	}
	table := d.dns.Table()
	for _, n := range d.state.Networks {
		ns := NetworkStatus{Name: n.Name, Subnet: n.Subnet, Gateway: n.Gateway, Internal: n.Internal}
		if ls, ok := d.listening[n.Name]; ok {
			ns.Error = ls.err
			if ls.err == "" {
				ns.Listen = ls.bound.String()
			}
		} else {
			ns.Error = "no valid gateway address"
		}
		ns.Names = names(table, n.Name, d.endpoints)
		st.Networks = append(st.Networks, ns)
	}
	return st
}

// names lists the names network answers, with their current addresses.
func names(t *netdns.Table, network string, eps []netdns.Endpoint) []Name {
	seen := map[string]bool{}
	out := []Name{}
	for _, e := range eps {
		if e.Network != network {
			continue
		}
		for _, n := range e.Names() {
			for _, name := range []string{n, n + "." + network} {
				if seen[name] {
					continue
				}
				seen[name] = true
				v4, v6, ok := t.Lookup(network, name)
				if !ok {
					continue
				}
				nm := Name{Name: name}
				for _, a := range append(v4, v6...) {
					nm.Addresses = append(nm.Addresses, a.String())
				}
				out = append(out, nm)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
