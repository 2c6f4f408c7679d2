package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stackdev/stack/netdns"
)

func TestReadOnlyMappingOfTheExecutableOnly(t *testing.T) {
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{"00400000-00ec8000 r-xp 00000000 00:2a 1234   /usr/bin/stack", true},
		{"00ec8000-01adf000 r--p 00ac8000 00:2a 1234   /usr/bin/stack", true},
		{"01adf000-01b7e000 rw-p 016df000 00:2a 1234   /usr/bin/stack", false}, // data: written to
		{"7f6f04e04000-7f6f04f5a000 r-xp 00028000 00:2a 99 /usr/lib/x86_64-linux-gnu/libc.so.6", false},
		{"1c3d83c00000-1c3d84c00000 rw-p 00000000 00:00 0", false},
		{"00400000-00ec8000 r-xp 00000000 00:2a 1234   /usr/bin/stack (deleted)", false},
	} {
		lo, hi, ok := readOnlyMapping(tc.line, "/usr/bin/stack")
		if ok != tc.ok || ok && (lo != 0x400000 && lo != 0xec8000 || hi <= lo) {
			t.Errorf("%q: %x-%x %v, want %v", tc.line, lo, hi, ok, tc.ok)
		}
	}
}

// Dropping the executable's pages unmaps them (the resident file pages
// shrink) and the program runs on: the pages fault back in.
func TestDropExecutablePagesShrinksResidentFilePages(t *testing.T) {
	before := rssFileKB(t)
	dropExecutablePages()
	after := rssFileKB(t)
	if after >= before {
		t.Fatalf("RssFile %d kB before, %d kB after", before, after)
	}
	if got := memLimitFor(1<<20, false); got != minMemLimit {
		t.Fatalf("limit for a small heap %d, want the floor", got)
	}
	if got := memLimitFor(1<<20, true); got != busyMemLimit {
		t.Fatalf("limit for a small heap of a busy daemon %d, want the busy floor", got)
	}
	if got := memLimitFor(100<<20, false); got != 204<<20 {
		t.Fatalf("limit for a 100 MiB heap %d, want twice it and slack", got)
	}
}

func rssFileKB(t *testing.T) int {
	t.Helper()
	b, ok := residentFileBytes()
	if !ok {
		t.Skip("no RssFile in /proc/self/status")
	}
	return b >> 10
}

// The daemon counts as busy once the collector runs more than once every
// two seconds, and stays so until it runs ten times less often over a
// period of busyJudgedOver.
func TestGCWatchIsBusyWithAMarginEachWay(t *testing.T) {
	start := time.Now()
	w := gcWatch{since: start}
	steps := []struct {
		cycles  uint64
		after   time.Duration
		busy    bool
		changed bool
	}{
		{cycles: 1, after: 2 * time.Second, busy: false, changed: false},           // 0.5/s: not more than once every two seconds
		{cycles: 7, after: 4 * time.Second, busy: true, changed: true},             // 3/s
		{cycles: 7, after: 6 * time.Second, busy: true, changed: false},            // none in 2 s: too short a period to judge a busy daemon
		{cycles: 9, after: 34 * time.Second, busy: true, changed: false},           // 2 in 30 s: still above a tenth
		{cycles: 9, after: 64 * time.Second, busy: false, changed: true},           // 0/s
		{cycles: 30, after: 64500 * time.Millisecond, busy: false, changed: false}, // too short a period to judge
	}
	for i, s := range steps {
		changed := w.update(s.cycles, start.Add(s.after))
		if w.busy != s.busy || changed != s.changed {
			t.Fatalf("step %d (%d collections at %s): busy %v changed %v, want %v %v", i, s.cycles, s.after, w.busy, changed, s.busy, s.changed)
		}
	}
}

// switchingTables is a DNS server whose table the test replaces.
type switchingTables struct{ table atomic.Pointer[netdns.Table] }

func (s *switchingTables) Table() *netdns.Table { return s.table.Load() }

func TestTheFirstTrimWaitsUntilTheTablesStopChanging(t *testing.T) {
	var dns switchingTables
	dns.table.Store(netdns.NewTable(nil))
	done := make(chan time.Time, 1)
	go func() {
		if waitFirstTable(context.Background(), &dns) {
			done <- time.Now()
		}
	}()
	// A bulk up: a new table every 200ms for 2s.
	burstEnd := time.Now().Add(2 * time.Second)
	for time.Now().Before(burstEnd) {
		dns.table.Store(netdns.NewTable(nil))
		time.Sleep(200 * time.Millisecond)
	}
	select {
	case at := <-done:
		if at.Before(burstEnd) {
			t.Errorf("trimmed %s before the burst of new tables ended", burstEnd.Sub(at))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no trim within 5s of the burst's end")
	}
}

func TestTheDaemonTrimsAgainAfterEachBurstOfNewTables(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	w := burstWatch{seen: netdns.NewTable(nil), trimmed: start}
	at := func(d time.Duration) time.Time { return start.Add(d) }

	// Without a new table, nothing is due, however long it has been.
	if w.trimDue(w.seen, at(time.Hour)) {
		t.Fatal("trimmed with no new table since the last trim")
	}
	// An up an hour later: a new table every 200ms for 3s.
	burst := at(time.Hour)
	var table *netdns.Table
	for d := time.Duration(0); d < 3*time.Second; d += 200 * time.Millisecond {
		table = netdns.NewTable(nil)
		if w.trimDue(table, burst.Add(d)) {
			t.Fatalf("trimmed %s into a burst of new tables", d)
		}
	}
	lastTable := burst.Add(2800 * time.Millisecond)
	if w.trimDue(table, lastTable.Add(trimSettle/2)) {
		t.Fatal("trimmed before the tables had settled")
	}
	if !w.trimDue(table, lastTable.Add(trimSettle)) {
		t.Fatal("no trim once the tables had settled")
	}
	if w.trimDue(table, lastTable.Add(time.Minute)) {
		t.Fatal("trimmed twice for one burst")
	}
}

func TestTrimsAreAtLeastRetrimEveryApart(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	w := burstWatch{seen: netdns.NewTable(nil), trimmed: start}
	table := netdns.NewTable(nil)
	for d := time.Duration(0); d < retrimEvery; d += time.Second {
		if w.trimDue(table, start.Add(d)) {
			t.Fatalf("trimmed %s after the last trim", d)
		}
	}
	if !w.trimDue(table, start.Add(retrimEvery)) {
		t.Fatal("the table that came meanwhile was never followed by a trim")
	}
}

func TestTablesThatNeverSettleAreTrimmedAfterTrimBurstAtMost(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	w := burstWatch{seen: netdns.NewTable(nil), trimmed: start.Add(-time.Hour)}
	trimmedAt := time.Duration(-1)
	// Containers restarting in a loop: a new table every half second.
	for d := time.Duration(0); d <= 2*trimBurstAtMost; d += trimSettle / 2 {
		if w.trimDue(netdns.NewTable(nil), start.Add(d)) {
			trimmedAt = d
			break
		}
	}
	if trimmedAt != trimBurstAtMost {
		t.Fatalf("trimmed %v into the endless burst, want %v", trimmedAt, trimBurstAtMost)
	}
}

func TestTheBinarysPagesAreUnmappedOnceAnObserveHasStoppedMappingThem(t *testing.T) {
	const mb = 1 << 20
	start := time.Unix(1_000_000, 0)
	tick := func(n int) time.Time { return start.Add(time.Duration(n) * trimWait) }
	var w execWatch
	w.unmapped(start.Add(-time.Hour), 3*mb, true)
	// Under execRegrow more: nothing to do, however long.
	for n := range 50 {
		if w.dropDue(5*mb, tick(n)) {
			t.Fatal("unmapped 2 MB mapped back: less than execRegrow")
		}
	}
	// A resync's observe maps 8 MB over three looks, then stops.
	for n, resident := range []int{8 * mb, 10 * mb, 11 * mb} {
		if w.dropDue(resident, tick(50+n)) {
			t.Fatalf("unmapped at %d MB while the observe was still mapping", resident/mb)
		}
	}
	if !w.dropDue(11*mb, tick(53)) {
		t.Fatal("not unmapped once the pages stopped growing")
	}
	w.unmapped(tick(53), 3*mb, true)
	// Mapped back at once: the next unmapping waits execDropEvery.
	w.dropDue(12*mb, tick(54))
	for n := 55; tick(n).Sub(w.last) < execDropEvery; n++ {
		if w.dropDue(12*mb, tick(n)) {
			t.Fatalf("unmapped again %s after the last time", tick(n).Sub(w.last))
		}
	}
}

func TestPagesThatKeepGrowingAreUnmappedAfterExecSettleAtMost(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	var w execWatch
	w.unmapped(start.Add(-time.Hour), 3<<20, true)
	resident := 8 << 20
	for d := time.Duration(0); d < 3*execSettleAtMost; d += trimWait {
		resident += 64 << 10 // a healthcheck's probe maps a little more each time
		if w.dropDue(resident, start.Add(d)) {
			if d < execSettleAtMost {
				t.Fatalf("unmapped %s into the growth, before execSettleAtMost", d)
			}
			return
		}
	}
	t.Fatal("pages that kept growing were never unmapped")
}
