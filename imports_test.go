// Package stack_test holds the module-wide rules that no single package can
// check for itself: which package may import what (see DESIGN.md).
package stack_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/stackdev/stack"

// importRule says which imports a package may not have, directly or not.
type importRule struct {
	pkg string
	// forbidden are import path prefixes the package must not depend on.
	forbidden []string
	// onlyModule lists the module packages it may depend on (nil: any).
	onlyModule []string
	// stdlibOnly: no other module's packages at all.
	stdlibOnly bool
}

var importRules = []importRule{
	{pkg: "engine", forbidden: []string{"github.com/containerd/containerd", "github.com/containernetworking", "github.com/compose-spec", "github.com/miekg/dns"}, onlyModule: []string{}},
	{pkg: "compose", forbidden: []string{"github.com/containerd/containerd", "github.com/containernetworking", "github.com/miekg/dns"}, onlyModule: []string{"engine"}},
	{pkg: "reconcile", forbidden: []string{"github.com/containerd/containerd", "github.com/containernetworking", "github.com/miekg/dns"}, onlyModule: []string{"compose", "engine"}},
	{pkg: "engine/enginetest", forbidden: []string{"github.com/containerd/containerd", "github.com/containernetworking", "github.com/compose-spec", "github.com/miekg/dns"}, onlyModule: []string{"engine"}},
	{pkg: "engine/ctrd", forbidden: []string{"github.com/compose-spec", "github.com/miekg/dns"}, onlyModule: []string{"engine", "engine/jsonfile"}},
	// The logging binary runs before the heavy packages initialise (see
	// cmd/stack/logdriver): it must not need them.
	{pkg: "engine/jsonfile", onlyModule: []string{}, stdlibOnly: true},
	{pkg: "cmd/stack/logdriver", onlyModule: []string{"engine/jsonfile"}, stdlibOnly: true},
	{pkg: "daemon", forbidden: []string{"github.com/containerd/containerd", "github.com/containernetworking", "github.com/compose-spec"}, onlyModule: []string{"engine", "netdns"}},
	{pkg: "netdns", forbidden: []string{"github.com/containerd/containerd", "github.com/containernetworking", "github.com/compose-spec"}, onlyModule: []string{}},
}

// TestImportRules holds the package boundaries drawn in DESIGN.md: the
// planner never sees containerd, only engine/ctrd talks to it, only compose
// reads compose-go, only netdns speaks DNS.
func TestImportRules(t *testing.T) {
	for _, rule := range importRules {
		t.Run(rule.pkg, func(t *testing.T) {
			deps := listDeps(t, module+"/"+rule.pkg)
			for _, v := range checkRule(rule, deps) {
				t.Error(v)
			}
		})
	}
}

// TestImportRulesCatchViolations proves the checker is not vacuous: a
// dependency list that breaks a rule is reported.
func TestImportRulesCatchViolations(t *testing.T) {
	deps := []string{module + "/engine", "github.com/containerd/containerd/v2/client", module + "/engine/ctrd"}
	got := checkRule(importRules[2], deps)
	if len(got) != 2 {
		t.Fatalf("want 2 violations (containerd client, engine/ctrd), got %d: %v", len(got), got)
	}
	got = checkRule(importRule{pkg: "engine/jsonfile", onlyModule: []string{}, stdlibOnly: true}, []string{"os", "golang.org/x/sys/unix"})
	if len(got) != 1 {
		t.Fatalf("want 1 violation (golang.org/x/sys/unix), got %d: %v", len(got), got)
	}
}

func checkRule(rule importRule, deps []string) []string {
	var violations []string
	for _, dep := range deps {
		for _, bad := range rule.forbidden {
			if strings.HasPrefix(dep, bad) {
				violations = append(violations, fmt.Sprintf("%s imports %s (forbidden by DESIGN.md)", rule.pkg, dep))
			}
		}
		if first, _, _ := strings.Cut(dep, "/"); rule.stdlibOnly && strings.Contains(first, ".") && !strings.HasPrefix(dep, module+"/") {
			violations = append(violations, fmt.Sprintf("%s imports %s; it may import only the standard library", rule.pkg, dep))
		}
		if rule.onlyModule == nil || !strings.HasPrefix(dep, module+"/") {
			continue
		}
		rel := strings.TrimPrefix(dep, module+"/")
		if rel == rule.pkg || contains(rule.onlyModule, rel) {
			continue
		}
		violations = append(violations, fmt.Sprintf("%s imports %s; it may import only %v of this module", rule.pkg, rel, rule.onlyModule))
	}
	return violations
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func listDeps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=Deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	var p struct{ Deps []string }
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("parse go list output: %v", err)
	}
	return p.Deps
}
