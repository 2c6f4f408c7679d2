package main

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stackdev/stack/netdns"
)

// The daemon lives for days next to the containers, so it keeps its
// resident memory small. Right after start most of it is
//
//   - the pages of stack's own binary that start-up touched: every
//     package's init runs once, and the kernel maps the 64 KiB around each
//     page faulted in, so most of the 30+ MB binary ends up mapped though
//     the daemon then runs a small part of it;
//   - the garbage of start-up and of each observe, which the Go runtime
//     keeps mapped, without a memory limit, long after collecting it.
//
// So once the daemon serves, it unmaps the binary's read-only pages (they
// stay in the page cache, shared with every other stack process; a page the
// daemon uses again, such as those of the observe every resync runs, is
// mapped back by a minor fault) and returns the free heap to the OS; and
// the collector runs against a memory limit that follows the live heap, so
// that an observe's garbage goes back soon instead of staying mapped.
//
// A bulk `up` or `down` while the daemon runs maps as much again (a daemon
// serving before an `up` of 100 containers: 7 → 32 MB), so it trims again
// after each burst of new tables. And each resync's observe of 100
// containers maps 8 MB of the binary back (the containerd client's gRPC
// and protobuf code, 64 KiB a fault), so it unmaps them again once they
// come to execRegrow: 10-14 MB all the time with 100 containers, where
// trimming only at start left 24 MB after each resync.
const (
	trimWait   = 100 * time.Millisecond // polls for the first table
	trimAtMost = 5 * time.Second        // trims then even without one
	trimSettle = time.Second            // without a new table: the burst is over
	// trimBurstAtMost bounds the wait for a table that keeps changing.
	trimBurstAtMost = 30 * time.Second
	gcTuneEvery     = 30 * time.Second // the limit follows the live heap
	// retrimEvery bounds the trims of a daemon whose table keeps changing
	// (containers restarting in a loop): a trim collects the whole heap.
	retrimEvery = 10 * time.Second
	// execRegrow is how much of the binary may be mapped back since the
	// last trim before it is unmapped again: a page fault maps 64 KiB, so
	// an observe's scattered code soon adds up to megabytes.
	execRegrow = 4 << 20
	// execDropEvery bounds those unmappings: each costs the next observe
	// about a hundred minor faults, well under a millisecond.
	execDropEvery = 2 * time.Second
	// execSettleAtMost bounds the wait for the mapped pages to stop
	// growing (healthchecks every second keep mapping some).
	execSettleAtMost = time.Second
	// minMemLimit fits a live heap of a few MB and the garbage of an
	// observe of a hundred containers without collecting over and over.
	minMemLimit = 13 << 20
	// busyMemLimit is the floor while the daemon allocates fast (dozens of
	// healthcheck probes a second): under 30 probes a second a 13 MiB
	// limit kept the collector running, 35-48% of a core; 16 MiB and more
	// brought it to about 10%.
	busyMemLimit = 24 << 20
	// busyGCRate is the collections per second above which the daemon
	// counts as busy: 30 healthchecks a second at the idle floor collect
	// about once a second.
	busyGCRate    = 0.5
	memLimitSlack = 4 << 20
	// daemonGCPercent lets the memory limit, not GOGC, decide when to
	// collect: with GOGC=100 the daemon's live heap of 2-3 MB meant a
	// collection every 4 MB allocated, about once a second under 30
	// healthchecks a second (a tenth of the daemon's CPU), while the limit
	// had room to spare.
	daemonGCPercent = 200
)

// tabler is the DNS server of the daemon: its table changes on the first
// refresh.
type tabler interface{ Table() *netdns.Table }

// keepDaemonSmall trims once the daemon has published its first table,
// then keeps the memory limit tuned until ctx ends. A GOMEMLIMIT from the
// environment wins.
func keepDaemonSmall(ctx context.Context, dns tabler) {
	runtime.MemProfileRate = 0 // nobody reads the daemon's heap profile
	if !waitFirstTable(ctx, dns) {
		return
	}
	trim()
	tune := os.Getenv("GOMEMLIMIT") == ""
	if tune && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGCPercent)
	}
	t := time.NewTicker(trimWait) // a resync's pages go within 100 ms
	defer t.Stop()
	gc := gcWatch{cycles: gcCycles(), since: time.Now()}
	bursts := burstWatch{seen: dns.Table(), trimmed: time.Now()}
	var regrowth execWatch
	unmapped := func(at time.Time) {
		resident, ok := residentFileBytes()
		regrowth.unmapped(at, resident, ok)
	}
	unmapped(time.Now())
	var lastTune, lastCheck time.Time
	for {
		now := time.Now()
		if bursts.trimDue(dns.Table(), now) {
			trim()
			unmapped(now)
		} else if resident, ok := residentFileBytes(); ok && regrowth.dropDue(resident, now) {
			dropExecutablePages()
			unmapped(now)
		}
		if tune && now.Sub(lastCheck) >= gcCheckEvery {
			lastCheck = now
			if changed := gc.update(gcCycles(), now); changed || now.Sub(lastTune) >= gcTuneEvery {
				debug.SetMemoryLimit(memLimitFor(liveHeap(), gc.busy))
				lastTune = now
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// waitFirstTable waits until dns serves another table than the one it
// started with (at most trimAtMost), then until its table has not changed
// for trimSettle (at most trimBurstAtMost): a daemon started by a bulk up
// serves while the containers start, and trimming before that burst ends
// would leave its garbage mapped (RSS 24 → 34 MB with 100 containers).
// false when ctx ends first.
func waitFirstTable(ctx context.Context, dns tabler) bool {
	first := dns.Table()
	tick := time.NewTicker(trimWait)
	defer tick.Stop()
	for deadline := time.Now().Add(trimAtMost); dns.Table() == first && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	last, changed := dns.Table(), time.Now()
	for giveUp := time.Now().Add(trimBurstAtMost); time.Since(changed) < trimSettle && time.Now().Before(giveUp); {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		if t := dns.Table(); t != last {
			last, changed = t, time.Now()
		}
	}
	return true
}

// trim returns the free heap to the OS and unmaps the executable's pages.
func trim() {
	debug.FreeOSMemory()
	dropExecutablePages()
}

// burstWatch tells when a burst of new tables that came after the last trim
// is over: no new table for trimSettle, or trimBurstAtMost since the burst
// began; and retrimEvery since the last trim.
type burstWatch struct {
	seen       *netdns.Table // the table at the last look
	changed    time.Time     // when seen came
	burstBegan time.Time     // the first new table since the last trim; zero: none
	trimmed    time.Time
}

// trimDue looks at the table served at now and reports whether to trim.
func (w *burstWatch) trimDue(table *netdns.Table, now time.Time) bool {
	if table != w.seen {
		w.seen, w.changed = table, now
		if w.burstBegan.IsZero() {
			w.burstBegan = now
		}
	}
	if w.burstBegan.IsZero() || now.Sub(w.trimmed) < retrimEvery {
		return false
	}
	if now.Sub(w.changed) < trimSettle && now.Sub(w.burstBegan) < trimBurstAtMost {
		return false
	}
	w.burstBegan, w.trimmed = time.Time{}, now
	return true
}

// execWatch tells when the binary's pages mapped back in since the last
// unmapping (or trim) have come to execRegrow and stopped growing: the
// observe that maps them is over, so unmapping them now does not leave it
// to map them back at once. Growth that goes on for execSettleAtMost is
// unmapped all the same. Unmappings are execDropEvery apart at least.
type execWatch struct {
	mapped  int       // resident file bytes right after the last unmapping
	prev    int       // at the previous look
	growing time.Time // since when it is over mapped+execRegrow; zero: it is not
	last    time.Time // the last unmapping or trim
}

// unmapped records an unmapping (or a trim) at, and the resident file
// bytes right after it.
func (w *execWatch) unmapped(at time.Time, resident int, ok bool) {
	w.last = at
	if ok {
		w.mapped, w.prev, w.growing = resident, resident, time.Time{}
	}
}

// dropDue looks at the resident file bytes at now.
func (w *execWatch) dropDue(resident int, now time.Time) bool {
	stable := resident == w.prev
	w.prev = resident
	if resident < w.mapped+execRegrow {
		w.growing = time.Time{}
		return false
	}
	if w.growing.IsZero() {
		w.growing = now
	}
	return (stable || now.Sub(w.growing) >= execSettleAtMost) && now.Sub(w.last) >= execDropEvery
}

// memLimitFor is the soft memory limit for a live heap of live bytes: the
// heap GOGC=100 would allow, with a floor, so the limit only ever makes
// the collector return memory sooner, never run without end.
// While busy (collecting more than busyGCRate times a second) the floor is
// busyMemLimit.
func memLimitFor(live uint64, busy bool) int64 {
	floor := int64(minMemLimit)
	if busy {
		floor = busyMemLimit
	}
	return max(floor, int64(2*live)+memLimitSlack)
}

// gcCheckEvery is how often the collection rate is looked at.
const gcCheckEvery = 2 * time.Second

// busyJudgedOver is the period a busy daemon's rate is measured over: at
// the busy floor it collects only every several seconds, so a short period
// often holds no collection at all and would end busy at once.
const busyJudgedOver = 30 * time.Second

// gcWatch tells whether the daemon is busy: it becomes busy when the
// collector ran more than busyGCRate times a second over the last period,
// and stays busy until it runs less than a tenth of that (at the busy floor
// it runs less often: without the margin the floor would flip every check).
type gcWatch struct {
	busy   bool
	cycles uint64    // collections counted at since
	since  time.Time // start of the period
}

// update ends the period at now, with cycles collections counted so far,
// and reports whether busy changed. A period shorter than half of
// gcCheckEvery is left running.
func (w *gcWatch) update(cycles uint64, now time.Time) (changed bool) {
	elapsed := now.Sub(w.since)
	if elapsed < gcCheckEvery/2 || w.busy && elapsed < busyJudgedOver {
		return false
	}
	rate := float64(cycles-w.cycles) / elapsed.Seconds()
	w.cycles, w.since = cycles, now
	was := w.busy
	if w.busy {
		w.busy = rate >= busyGCRate/10
	} else {
		w.busy = rate > busyGCRate
	}
	return w.busy != was
}

// gcCycles counts the collections so far.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// liveHeap is the heap marked live by the last collection.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// residentFileBytes is the process's resident file pages (RssFile): its
// binary's, almost all of them.
func residentFileBytes() (int, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "RssFile:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			kb, err := strconv.Atoi(f[0])
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// dropExecutablePages unmaps the read-only mappings of the executable
// (code, read-only data): clean file pages, mapped back on their next use.
func dropExecutablePages() {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if lo, hi, ok := readOnlyMapping(sc.Text(), exe); ok {
			_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, lo, hi-lo, syscall.MADV_DONTNEED)
		}
	}
}

// readOnlyMapping parses a /proc/self/maps line such as
// "00400000-00ec8000 r-xp 00000000 00:2a 1234   /usr/bin/stack" and
// reports the range when it maps path without write permission.
func readOnlyMapping(line, path string) (lo, hi uintptr, ok bool) {
	f := strings.Fields(line)
	if len(f) < 6 || strings.Join(f[5:], " ") != path || strings.Contains(f[1], "w") {
		return 0, 0, false
	}
	start, end, found := strings.Cut(f[0], "-")
	if !found {
		return 0, 0, false
	}
	l, err1 := strconv.ParseUint(start, 16, 64)
	h, err2 := strconv.ParseUint(end, 16, 64)
	if err1 != nil || err2 != nil || h <= l {
		return 0, 0, false
	}
	return uintptr(l), uintptr(h), true
}
