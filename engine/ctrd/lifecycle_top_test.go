package ctrd

import (
	"testing"
	"time"
)

func TestParseStatCountsFieldsAfterTheLastParenthesis(t *testing.T) {
	// A command with a space and a ')' of its own; tty_nr 34816 is pts/0.
	stat := "42 (my) cmd) S 7 42 42 34816 42 4194560 100 0 0 0 250 50 0 0 20 0 1 0 12345 1000 10 18446744073709551615"
	tp, start, err := parseStat(stat)
	if err != nil {
		t.Fatal(err)
	}
	if tp.PID != 42 || tp.PPID != 7 || tp.TTY != "pts/0" || tp.CMD != "[my) cmd]" {
		t.Errorf("got %+v", tp)
	}
	if got := formatCPU(cpuTime(tp.TIME)); got != "00:00:03" {
		t.Errorf("TIME = %s, want 00:00:03 (300 ticks)", got)
	}
	if start != 123450*time.Millisecond {
		t.Errorf("start = %v, want 2m3.45s", start)
	}
	if _, _, err := parseStat("garbage"); err == nil {
		t.Error("malformed stat: no error")
	}
}

func TestTopFormats(t *testing.T) {
	if got := ttyName(0); got != "?" {
		t.Errorf("tty 0 = %s", got)
	}
	if got := formatCPU(26*time.Hour + 61*time.Second); got != "1-02:01:01" {
		t.Errorf("formatCPU = %s", got)
	}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	if got := formatStart(now.Add(-time.Hour), now); got != "09:00" {
		t.Errorf("today: %s", got)
	}
	if got := formatStart(now.AddDate(0, 0, -3), now); got != "Nov21" {
		t.Errorf("earlier: %s", got)
	}
	if got := statusUID("Name:\tsh\nUid:\t0\t1000\t0\t0\n"); got != "1000" {
		t.Errorf("effective uid = %s", got)
	}
}
