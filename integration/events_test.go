package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

const eventsProject = `
services:
  web:
    image: busybox
    network_mode: none
    labels:
      team: blue
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
  job:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "exit 3"]
`

// composeEvent is one line of `events --json`, with compose's field names.
type composeEvent struct {
	Time       time.Time         `json:"time"`
	Type       string            `json:"type"`
	Action     string            `json:"action"`
	ID         string            `json:"id"`
	Service    string            `json:"service"`
	Attributes map[string]string `json:"attributes"`
}

func parseEvents(t *testing.T, out string) []composeEvent {
	t.Helper()
	var evs []composeEvent
	for _, l := range lines(out) {
		if l == "" {
			continue
		}
		var ev composeEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("events --json line %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestEventsStreamTheProjectsContainerEvents(t *testing.T) {
	p := newProjectEnv(t, eventsProject)
	jsonEvents := p.start("events", "--json")
	jobText := p.start("events", "job")
	// containerd keeps no event history: run the one-shot job until both
	// streams have seen it die, so both are subscribed before web starts.
	p.mustRun("up", "-d", "job")
	job := p.container("job")
	err := eventually(30*time.Second, func() error {
		if !strings.Contains(jsonEvents.stdout.String(), `"id":"`+job.ID) || !strings.Contains(jobText.stdout.String(), "container die "+job.ID) {
			p.mustRun("start", "job")
			return fmt.Errorf("no job events yet:\n%s\n%s", jsonEvents.stdout.String(), jobText.stdout.String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	p.mustRun("up", "-d", "web")
	p.mustRun("stop", "web")
	web := p.container("web")
	jsonEvents.waitOutput(t, 20*time.Second, `"action":"die","attributes":{"exitCode":"0"`)

	evs := parseEvents(t, jsonEvents.stdout.String())
	seen := map[string]composeEvent{}
	for _, ev := range evs {
		seen[ev.Service+" "+ev.Action] = ev
		if ev.Type != "container" || time.Since(ev.Time) > time.Minute {
			t.Errorf("event %+v: want type container and a current time", ev)
		}
	}
	for _, want := range []string{"web create", "web start", "web die", "job start", "job die"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("no %q event in:\n%s", want, jsonEvents.stdout.String())
		}
	}
	if ev := seen["web create"]; ev.Time.Before(t0) {
		t.Errorf("web create at %v, before up -d web ran (%v)", ev.Time, t0)
	}
	if ev := seen["web start"]; ev.ID != web.ID || ev.Attributes["name"] != web.Name || ev.Attributes["team"] != "blue" ||
		!strings.HasSuffix(ev.Attributes["image"], "busybox:latest") {
		t.Errorf("web start = %+v, want its ID, name, image and labels (not compose's)", ev)
	}
	if ev := seen["job die"]; ev.ID != job.ID || ev.Attributes["exitCode"] != "3" {
		t.Errorf("job die = %+v, want exitCode 3", ev)
	}
	for _, ev := range evs {
		for k := range ev.Attributes {
			if strings.HasPrefix(k, "com.docker.compose.") {
				t.Errorf("attribute %s shown: compose leaves its own labels out", k)
			}
		}
	}

	// The text form, for job only: compose's line layout.
	t.Logf("events job:\n%s", jobText.stdout.String())
	for _, l := range lines(jobText.stdout.String()) {
		var date, clock, typ, action, id string
		if n, _ := fmt.Sscanf(l, "%s %s %s %s %s", &date, &clock, &typ, &action, &id); n != 5 || typ != "container" || id != job.ID {
			t.Errorf("events job line %q: want 'DATE TIME container ACTION %s (...)', job's only", l, job.ID)
		}
		if _, err := time.Parse("2006-01-02 15:04:05.000000", date+" "+clock); err != nil {
			t.Errorf("events line %q: time %v", l, err)
		}
		if !strings.HasSuffix(l, "name="+job.Name+")") {
			t.Errorf("events line %q does not end with the name attribute", l)
		}
	}
	if !strings.Contains(jobText.stdout.String(), "container die "+job.ID+" (exitCode=3, image=") {
		t.Errorf("no die line with exitCode=3 first among sorted attributes:\n%s", jobText.stdout.String())
	}

	// Ctrl-C ends the stream without an error.
	for _, b := range []*background{jsonEvents, jobText} {
		b.cmd.Process.Signal(syscall.SIGINT)
		b.wait(t, 10*time.Second)
		if b.code != 0 {
			t.Errorf("events after Ctrl-C: exit %d\n%s", b.code, b.stderr.String())
		}
	}
}
