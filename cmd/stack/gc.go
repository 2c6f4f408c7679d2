package main

import (
	"math"
	"runtime/debug"
	"sync"
	"time"
)

// Most stack commands are over in tens of milliseconds, and loading a
// project allocates several megabytes of short-lived garbage: collecting it
// then costs more than the whole rest of a no-op `up`. So the collector
// starts off, bounded by a memory limit, and is back to normal once a
// command has run for a moment (logs -f, attached up, the daemon).
const (
	quietGCLimit = 256 << 20
	quietGCFor   = 2 * time.Second
)

var restoreGCOnce sync.Once

// quietGC turns the collector off for the start of the command.
func quietGC() {
	debug.SetMemoryLimit(quietGCLimit)
	debug.SetGCPercent(-1)
	time.AfterFunc(quietGCFor, normalGC)
}

// normalGC restores the default collector (GOGC=100, no limit); the daemon
// calls it at once, as it lives for days and must stay small.
func normalGC() {
	restoreGCOnce.Do(func() {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	})
}
