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
// That full refresh costs time with the number of containers (containerd
// asks every shim), so a container's own event is also served at once by
// observing that container alone (patch.go): the table published is always
// the last refresh's State with the patches observed since it started.
// While patches answer a burst (a bulk up or down), the full refreshes are
// paced so that they take at most a tenth of the daemon's time
// (refreshDelay); a change no patch shows waits only the debounce.
//
// It runs healthchecks and enforces restart policies (restart.go): on a
// task's exit it decides, with restart_policy.go's pure Decide, whether and
// after which backoff to start it again (Docker's: 100 ms doubling to a
// minute, reset after 10 s of running); what the user stopped stays
// stopped, a mark the engine keeps; tasks gone with containerd or the host
// come back in depends_on order when the daemon starts.
//
// It may import only the standard library, engine and netdns. The engine is
// reached through the small Source interface, so containerd stays behind
// engine/ctrd.
package daemon
