package integration

import (
	"encoding/json"
	"strings"
	"testing"
)

const threeServices = `
services:
  web:
    image: hello
    depends_on: [api]
    stop_grace_period: 1s
  api:
    image: hello
    depends_on: [db]
    stop_grace_period: 1s
  db:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
  other:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`

func names(st map[string]string) string {
	var out []string
	for n := range st {
		out = append(out, n)
	}
	return strings.Join(sortedStrings(out), " ")
}

func sortedStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// `up SERVICE` starts the service and what it needs, nothing else.
func TestUpServiceStartsItsDependenciesOnly(t *testing.T) {
	p := newProjectEnv(t, threeServices)
	p.mustRun("up", "-d", "api")
	got := names(fingerprint(p.observe()))
	want := p.project + "-api-1 " + p.project + "-db-1"
	if got != want {
		t.Fatalf("containers after up api: %q, want %q", got, want)
	}
	// Other services' containers are never orphans of a partial up.
	p.mustRun("up", "-d", "other")
	r := p.run("up", "-d", "--remove-orphans", "db")
	if r.code != 0 || strings.Contains(r.stderr, "orphan") {
		t.Fatalf("partial up with --remove-orphans: exit %d, stderr %s", r.code, r.stderr)
	}
	if n := len(p.observe().Containers); n != 3 {
		t.Errorf("partial up removed other services' containers: %d left, want 3", n)
	}
}

func TestNoDepsStartsOnlyTheNamedService(t *testing.T) {
	p := newProjectEnv(t, threeServices)
	p.mustRun("up", "-d", "--no-deps", "web")
	if got := names(fingerprint(p.observe())); got != p.project+"-web-1" {
		t.Fatalf("containers after up --no-deps web: %q", got)
	}
}

func TestScaleUpNumbersFromTheHighestAndDownRemovesTheHighest(t *testing.T) {
	p := newProjectEnv(t, threeServices)
	p.mustRun("up", "-d", "--scale", "db=3", "db")
	before := fingerprint(p.observe())
	if got := names(before); got != p.project+"-db-1 "+p.project+"-db-2 "+p.project+"-db-3" {
		t.Fatalf("after scale 3: %q", got)
	}
	p.mustRun("up", "-d", "--scale", "db=1", "db")
	after := fingerprint(p.observe())
	if got := names(after); got != p.project+"-db-1" {
		t.Fatalf("after scale 1: %q, want only db-1", got)
	}
	if after[p.project+"-db-1"] != before[p.project+"-db-1"] {
		t.Errorf("scaling down touched db-1")
	}
}

func TestOrphansAreWarnedAboutAndRemovedOnRequest(t *testing.T) {
	p := newProjectEnv(t, threeServices)
	p.mustRun("up", "-d", "db", "other")
	p.writeCompose(strings.Split(threeServices, "  other:")[0])
	r := p.run("up", "-d", "db")
	if r.code != 0 || !strings.Contains(r.stderr, "orphan") || !strings.Contains(r.stderr, p.project+"-other-1") {
		t.Fatalf("up with an orphan: exit %d, want a warning naming it; stderr:\n%s", r.code, r.stderr)
	}
	if _, ok := fingerprint(p.observe())[p.project+"-other-1"]; !ok {
		t.Fatal("orphan removed without --remove-orphans")
	}
	p.mustRun("up", "-d", "--remove-orphans")
	if _, ok := fingerprint(p.observe())[p.project+"-other-1"]; ok {
		t.Fatal("orphan still there after --remove-orphans")
	}
}

func TestForceRecreateAndNoRecreate(t *testing.T) {
	p := newProjectEnv(t, threeServices)
	p.mustRun("up", "-d", "db")
	before := fingerprint(p.observe())
	p.mustRun("up", "-d", "--force-recreate", "db")
	forced := fingerprint(p.observe())
	if forced[p.project+"-db-1"] == before[p.project+"-db-1"] {
		t.Error("--force-recreate did not recreate an up-to-date container")
	}
	p.writeCompose(strings.Replace(threeServices, "  db:\n    image: busybox\n", "  db:\n    image: busybox\n    environment: {X: changed}\n", 1))
	p.mustRun("up", "-d", "--no-recreate", "db")
	if kept := fingerprint(p.observe()); kept[p.project+"-db-1"] != forced[p.project+"-db-1"] {
		t.Error("--no-recreate recreated a changed container")
	}
	if r := p.run("up", "-d", "--force-recreate", "--no-recreate"); r.code == 0 || !strings.Contains(r.stderr, "incompatible") {
		t.Errorf("conflicting flags: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestNoStartCreatesWithoutStarting(t *testing.T) {
	p := newProjectEnv(t, threeServices)
	p.mustRun("up", "-d", "--no-start", "db")
	st := p.observe()
	if len(st.Containers) != 1 || st.Containers[0].Status != "created" {
		t.Fatalf("after --no-start: %+v", fingerprint(st))
	}
	p.mustRun("up", "-d", "db")
	if st := p.observe(); st.Containers[0].Status != "running" {
		t.Fatalf("a created container was not started by the next up: %s", st.Containers[0].Status)
	}
}

func TestPlanJSONAndProgressJSON(t *testing.T) {
	p := newProjectEnv(t, threeServices)
	out := p.mustRun("plan", "--format", "json", "db")
	var plan map[string]any
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("plan --format json is not JSON: %v\n%s", err, out)
	}
	r := p.run("--progress", "json", "up", "-d", "db")
	if r.code != 0 {
		t.Fatalf("up --progress json: %s", r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	sawStarted := false
	for _, l := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("progress line is not JSON: %q", l)
		}
		if ev["id"] == "Container "+p.project+"-db-1" && ev["status"] == "done" && ev["step"] == "start-container" {
			sawStarted = true
		}
	}
	if !sawStarted {
		t.Errorf("no done event for starting db:\n%s", r.stderr)
	}
}
