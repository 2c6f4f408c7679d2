package main

import (
	"strings"
	"testing"

	"github.com/stackdev/stack/engine"
)

func TestSplitCpArgReadsServicePathAsCompose(t *testing.T) {
	for arg, want := range map[string][2]string{
		"web:/etc/hosts":   {"web", "/etc/hosts"},
		"web:relative":     {"web", "relative"},
		"/abs/with:colon":  {"", "/abs/with:colon"},
		"./local:name.txt": {"", "./local:name.txt"},
		"plain":            {"", "plain"},
		"-":                {"", "-"},
	} {
		if svc, p := splitCpArg(arg); svc != want[0] || p != want[1] {
			t.Errorf("splitCpArg(%q) = %q, %q; want %q, %q", arg, svc, p, want[0], want[1])
		}
	}
}

func TestCpTargetsAreEveryReplicaToAndTheFirstFrom(t *testing.T) {
	ctrs := func() []engine.Container {
		return []engine.Container{
			{Name: "p-web-run-x", Number: 1, OneOff: true},
			{Name: "p-web-2", Number: 2},
			{Name: "p-web-1", Number: 1},
		}
	}
	names := func(cs []engine.Container) string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return strings.Join(out, " ")
	}
	if got, _ := cpTargets("web", ctrs(), 0, false); names(got) != "p-web-1 p-web-2 p-web-run-x" {
		t.Errorf("to the service: %s", names(got))
	}
	if got, _ := cpTargets("web", ctrs(), 0, true); names(got) != "p-web-1" {
		t.Errorf("from the service: %s", names(got))
	}
	if got, _ := cpTargets("web", ctrs(), 2, true); names(got) != "p-web-2" {
		t.Errorf("--index 2: %s", names(got))
	}
	if _, err := cpTargets("web", ctrs(), 3, false); err == nil || !strings.Contains(err.Error(), "--index 3") {
		t.Errorf("--index 3: %v", err)
	}
	if _, err := cpTargets("web", nil, 0, false); err == nil || !strings.Contains(err.Error(), `no container found for service "web"`) {
		t.Errorf("no container: %v", err)
	}
}
