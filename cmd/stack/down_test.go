package main

import (
	"testing"
	"time"
)

func TestStopTimeoutFlag(t *testing.T) {
	for seconds, want := range map[int]time.Duration{
		-1: 0,  // unset: each service's stop_grace_period
		0:  -1, // -t 0: stop at once
		3:  3 * time.Second,
	} {
		if got := stopTimeout(seconds); got != want {
			t.Errorf("stopTimeout(%d) = %v, want %v", seconds, got, want)
		}
	}
}
