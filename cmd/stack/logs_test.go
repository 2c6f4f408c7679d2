package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func TestLogNameIsComposes(t *testing.T) {
	for _, tc := range []struct {
		c    engine.Container
		want string
	}{
		{engine.Container{Name: "demo-web-1", Project: "demo", Service: "web", Number: 1}, "web-1"},
		{engine.Container{Name: "demo-web-12", Project: "demo", Service: "web", Number: 12}, "web-12"},
		{engine.Container{Name: "my-db", Project: "demo", Service: "db", Number: 1}, "my-db"},
		{engine.Container{Name: "0123456789ab_demo-web-1", Project: "demo", Service: "web", Number: 1}, "0123456789ab_demo-web-1"},
	} {
		if got := logName(tc.c); got != tc.want {
			t.Errorf("logName(%s) = %q, want %q", tc.c.Name, got, tc.want)
		}
	}
}

func TestLogPrinterPadsColoursAndStamps(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 5, time.UTC)
	print := func(o logsOptions, color bool) string {
		var b bytes.Buffer
		p := newLogPrinter(&b, o, color)
		p.setNames([]string{"web-1", "worker-1"})
		p.print("web-1", ctrd.LogEntry{Time: at, Text: "hello\n"})
		p.print("worker-1", ctrd.LogEntry{Time: at, Text: "tty line\r\n"})
		p.print("web-1", ctrd.LogEntry{Time: at, Text: "cut without newline"})
		p.flush()
		return b.String()
	}
	if got, want := print(logsOptions{}, false), "web-1    | hello\nworker-1 | tty line\nweb-1    | cut without newline\n"; got != want {
		t.Errorf("plain:\n%s\nwant:\n%s", got, want)
	}
	if got := print(logsOptions{}, true); !strings.HasPrefix(got, "\033[36mweb-1    |\033[0m hello\n\033[33mworker-1 |\033[0m tty line\n") {
		t.Errorf("coloured: %q", got)
	}
	if got, want := print(logsOptions{noPrefix: true, timestamps: true}, true), "2026-11-23T12:00:00.000000005Z hello\n"; !strings.HasPrefix(got, want) {
		t.Errorf("--no-log-prefix -t: %q, want it to start with %q", got, want)
	}
}

func TestLogsQueryFromFlags(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	q, err := logsOptions{tail: "5", since: "42m", until: "2026-11-23T11:59:00Z"}.query(now)
	if err != nil || q.Tail != 5 || !q.Since.Equal(now.Add(-42*time.Minute)) || !q.Until.Equal(now.Add(-time.Minute)) {
		t.Fatalf("query = %+v, %v", q, err)
	}
	if q, _ := (logsOptions{tail: "all"}).query(now); q.Tail != -1 {
		t.Errorf("--tail all = %d, want -1", q.Tail)
	}
	for _, o := range []logsOptions{{tail: "ten"}, {since: "soon"}, {until: "later"}} {
		if _, err := o.query(now); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestSelectLogContainersSkipsOneOffsAndFiltersByServiceAndIndex(t *testing.T) {
	cs := []engine.Container{
		{Name: "p-web-2", Service: "web", Number: 2},
		{Name: "p-web-1", Service: "web", Number: 1},
		{Name: "p-db-1", Service: "db", Number: 1},
		{Name: "p-web-run-1", Service: "web", Number: 1, OneOff: true},
	}
	names := func(cs []engine.Container) (out []string) {
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	if got := strings.Join(names(selectLogContainers(cs, nil, 0)), " "); got != "p-db-1 p-web-1 p-web-2" {
		t.Errorf("all = %s", got)
	}
	if got := strings.Join(names(selectLogContainers(cs, []string{"web"}, 2)), " "); got != "p-web-2" {
		t.Errorf("web --index 2 = %s", got)
	}
	if err := checkLogServices(selectLogContainers(cs, []string{"nope"}, 0), []string{"nope"}, "p"); err == nil || !strings.Contains(err.Error(), "no such service: nope") {
		t.Errorf("unknown service: %v", err)
	}
}
