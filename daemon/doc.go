// Package daemon is the per-host `stack daemon`: it keeps the embedded DNS
// server (netdns) answering what runs, and answers `stack daemon status` on
// a root-only unix socket.
//
// It keeps no state that cannot be rebuilt. On start it observes the engine
// (every project of its namespace, and the state directory's networks),
// builds a netdns.Table and one listener per network gateway, and serves at
// once. It then follows the engine's events level-based: an event only says
// "something changed"; a burst of them is debounced into one Observe, and
// the new table is swapped in atomically, without restarting listeners.
//
// It may import only the standard library, engine and netdns. The engine is
// reached through the small Source interface, so containerd stays behind
// engine/ctrd.
package daemon
