package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func TestAttachedFlagsAreCheckedAsCompose(t *testing.T) {
	for _, tc := range []struct {
		name     string
		f        upFlags
		attached bool
		err      string
	}{
		{"plain up", upFlags{}, true, ""},
		{"-d", upFlags{detach: true}, false, ""},
		{"--wait", upFlags{wait: true}, false, ""},
		{"--no-start", upFlags{convergeFlags: convergeFlags{noStart: true}}, false, ""},
		{"exit-code-from implies abort", upFlags{attached: attachedFlags{exitCodeFrom: "x"}}, true, ""},
		{"both aborts", upFlags{attached: attachedFlags{abortOnExit: true, abortOnFailure: true}}, false, "--abort-on-container-failure cannot be combined with --abort-on-container-exit"},
		{"--wait --exit-code-from", upFlags{wait: true, attached: attachedFlags{exitCodeFrom: "x"}}, false, "--wait cannot be combined"},
		{"-d --attach", upFlags{detach: true, attached: attachedFlags{attach: []string{"a"}}}, false, "--detach cannot be combined"},
		{"--wait --abort-on-container-failure", upFlags{wait: true, attached: attachedFlags{abortOnFailure: true}}, false, "--detach cannot be combined"},
		{"--attach --attach-dependencies", upFlags{attached: attachedFlags{attach: []string{"a"}, attachDeps: true}}, false, "cannot combine --attach and --attach-dependencies"},
	} {
		attached, err := tc.f.validateAttached()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || attached != tc.attached {
			t.Errorf("%s: attached %v, %v; want %v", tc.name, attached, err, tc.attached)
		}
	}
	f := upFlags{attached: attachedFlags{exitCodeFrom: "x"}}
	f.validateAttached()
	if !f.attached.abortOnExit {
		t.Error("--exit-code-from does not imply --abort-on-container-exit")
	}
}

// chain is web → api → db.
var chain = compose.Desired{Project: "p", Services: []compose.Service{
	{Name: "db"},
	{Name: "api", DependsOn: []engine.Dependency{{Service: "db"}}},
	{Name: "web", DependsOn: []engine.Dependency{{Service: "api"}}},
	{Name: "tools"},
}}

func TestAttachedServicesAreComposes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		services []string
		f        attachedFlags
		want     []string
		err      string
	}{
		{"no service named: all", nil, attachedFlags{}, []string{"api", "db", "tools", "web"}, ""},
		{"named: only those, not their dependencies", []string{"web"}, attachedFlags{}, []string{"web"}, ""},
		{"--attach-dependencies", []string{"web"}, attachedFlags{attachDeps: true}, []string{"api", "db", "web"}, ""},
		{"--attach", nil, attachedFlags{attach: []string{"db"}}, []string{"db"}, ""},
		{"--no-attach", nil, attachedFlags{noAttach: []string{"tools", "db"}}, []string{"api", "web"}, ""},
		{"--attach unknown", nil, attachedFlags{attach: []string{"db", "nope"}}, nil, "cannot attach to services not included in up: nope"},
	} {
		testAttachServices(t, chain, tc.name, tc.services, tc.f, tc.want, tc.err)
	}
}

// attach: false leaves a service out unless --attach names it.
func TestAttachFalseIsLeftOutUnlessAttachNamesIt(t *testing.T) {
	quiet := chain
	quiet.Services = slices.Clone(chain.Services)
	quiet.Services[3].NoAttach = true // tools
	for _, tc := range []struct {
		name     string
		services []string
		f        attachedFlags
		want     []string
	}{
		{"no service named", nil, attachedFlags{}, []string{"api", "db", "web"}},
		{"named", []string{"tools", "db"}, attachedFlags{}, []string{"db"}},
		{"--attach names it", nil, attachedFlags{attach: []string{"tools"}}, []string{"tools"}},
	} {
		testAttachServices(t, quiet, tc.name, tc.services, tc.f, tc.want, "")
	}
}

func testAttachServices(t *testing.T, desired compose.Desired, name string, services []string, f attachedFlags, want []string, wantErr string) {
	t.Helper()
	got, err := attachServices(desired, services, f)
	if wantErr != "" {
		if err == nil || err.Error() != wantErr {
			t.Errorf("%s: error %v, want %q", name, err, wantErr)
		}
		return
	}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("%s: %v (%v), want %v", name, got, err, want)
	}
}

func TestAttachedUpWatchesWhatComposeMonitors(t *testing.T) {
	a := &app{}
	u, err := a.newAttachedUp(&upFlags{attached: attachedFlags{noAttach: []string{"tools"}}}, chain, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.watched, []string{"api", "db", "web"}) || !slices.Equal(u.stop, []string{"db", "api", "web", "tools"}) {
		t.Errorf("no service named: watched %v, stopped %v", u.watched, u.stop)
	}
	u, _ = a.newAttachedUp(&upFlags{attached: attachedFlags{attachDeps: true}}, chain, []string{"web"})
	if !slices.Equal(u.watched, []string{"web"}) || !slices.Equal(u.stop, []string{"web"}) {
		t.Errorf("up web: watched %v, stopped %v; want web's only", u.watched, u.stop)
	}
	if _, err := a.newAttachedUp(&upFlags{attached: attachedFlags{exitCodeFrom: "nope"}}, chain, nil); err == nil || err.Error() != "no such service: nope" {
		t.Errorf("--exit-code-from nope: %v", err)
	}
}

func TestEventsPrintAsCompose(t *testing.T) {
	ev := ctrd.ContainerEvent{
		Time: time.Date(2026, 11, 24, 1, 2, 3, 123456789, time.Local), Action: "die", ID: "abc", ExitCode: 3,
		Image: "docker.io/library/busybox:latest",
		Labels: map[string]string{
			engine.LabelProject: "p", engine.LabelService: "web", engine.LabelName: "p-web-1",
			engine.LabelConfigHash: "x", "dev.stack.hash-version": "1", "team": "blue",
		},
	}
	var b bytes.Buffer
	if err := writeEvent(&b, ev, false); err != nil {
		t.Fatal(err)
	}
	want := "2026-11-24 01:02:03.123456 container die abc (exitCode=3, image=docker.io/library/busybox:latest, name=p-web-1, team=blue)\n"
	if b.String() != want {
		t.Errorf("text:\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	if err := writeEvent(&b, ev, true); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Time       time.Time
		Type       string
		Action     string
		ID         string
		Service    string
		Attributes map[string]string
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%s: %v", b.String(), err)
	}
	if !strings.HasPrefix(b.String(), `{"action":"die","attributes":{`) || got.Type != "container" || got.ID != "abc" ||
		got.Service != "web" || !got.Time.Equal(ev.Time) || got.Attributes["exitCode"] != "3" || len(got.Attributes) != 4 {
		t.Errorf("json: %s", b.String())
	}
	if !eventSelected(ev, "p", nil) || !eventSelected(ev, "p", []string{"web"}) || eventSelected(ev, "p", []string{"db"}) || eventSelected(ev, "q", nil) {
		t.Error("events selects by project and service")
	}
	ev.Labels[engine.LabelOneOff] = "True"
	if eventSelected(ev, "p", nil) {
		t.Error("one-off containers are left out, as compose does")
	}
}
