package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

// projectEnv is a stackEnv with the example images loaded and a compose
// project in its directory, brought down (with volumes) when the test ends.
type projectEnv struct {
	*stackEnv
	project string
}

func newProjectEnv(t *testing.T, composeYAML string) *projectEnv {
	t.Helper()
	e := newStackEnv(t)
	cleanupNamespace(t, e.namespace)
	p := &projectEnv{stackEnv: e, project: e.namespace}
	t.Cleanup(func() {
		if r := e.run("-p", p.project, "down", "-v", "--remove-orphans", "-t", "0"); r.code != 0 {
			t.Logf("cleanup down: exit %d: %s", r.code, r.stderr)
		}
	})
	e.loadExampleImages()
	p.writeCompose(composeYAML)
	return p
}

func (p *projectEnv) writeCompose(yaml string) {
	p.t.Helper()
	content := "name: " + p.project + "\n" + yaml
	if err := os.WriteFile(filepath.Join(p.dir, "compose.yaml"), []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// observe reads the project through the driver, as the next command would.
func (p *projectEnv) observe() engine.State {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ctrd.New(ctx, ctrd.Options{Address: env.socket, Namespace: p.namespace, StateDir: p.stateDir})
	if err != nil {
		p.t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Observe(ctx, p.project)
	if err != nil {
		p.t.Fatal(err)
	}
	return st
}

// fingerprint identifies each container's instance and its running process:
// name → id/pid/start time. Equal fingerprints mean nothing was created,
// started or stopped.
func fingerprint(st engine.State) map[string]string {
	out := map[string]string{}
	for _, c := range st.Containers {
		out[c.Name] = fmt.Sprintf("%s pid=%d started=%s status=%s", c.ID, c.Pid, c.StartedAt.Format(time.RFC3339Nano), c.Status)
	}
	return out
}

const twoServices = `
services:
  web:
    image: hello
    environment:
      ROLE: web
    depends_on: [worker]
  worker:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    environment:
      ROLE: worker
`

func TestUpTwiceDoesNothingTheSecondTime(t *testing.T) {
	p := newProjectEnv(t, twoServices)
	p.mustRun("up", "-d")
	first := fingerprint(p.observe())
	if len(first) != 2 {
		t.Fatalf("want 2 containers after up, got %v", first)
	}
	for name, fp := range first {
		if !strings.Contains(fp, "status=running") {
			t.Errorf("%s is not running: %s", name, fp)
		}
	}
	out := p.mustRun("up", "-d")
	if strings.TrimSpace(out) != "nothing to do" {
		t.Errorf("second up printed %q, want \"nothing to do\"", out)
	}
	second := fingerprint(p.observe())
	for name, fp := range first {
		if second[name] != fp {
			t.Errorf("%s changed on a no-op up:\n before %s\n after  %s", name, fp, second[name])
		}
	}
	if r := p.run("plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan on a converged project: exit %d, want 0\n%s", r.code, r.stdout)
	}
}

func TestChangingOneServiceRecreatesOnlyItsContainer(t *testing.T) {
	p := newProjectEnv(t, twoServices)
	p.mustRun("up", "-d")
	before := fingerprint(p.observe())
	p.writeCompose(strings.Replace(twoServices, "ROLE: web", "ROLE: frontend", 1))

	r := p.run("plan", "--detailed-exitcode")
	if r.code != 2 {
		t.Fatalf("plan with a changed service: exit %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
	}
	wantPlan := fmt.Sprintf("~ container %s-web-1", p.project)
	if !strings.Contains(r.stdout, wantPlan) || !strings.Contains(r.stdout, "Plan: 0 to add, 1 to change, 0 to remove.") {
		t.Errorf("plan output:\n%s\nwant a line %q and one change", r.stdout, wantPlan)
	}
	if strings.Contains(r.stdout, "worker") {
		t.Errorf("plan touches the unchanged worker:\n%s", r.stdout)
	}

	p.mustRun("up", "-d")
	after := fingerprint(p.observe())
	worker := p.project + "-worker-1"
	web := p.project + "-web-1"
	if after[worker] != before[worker] {
		t.Errorf("unchanged worker was touched:\n before %s\n after  %s", before[worker], after[worker])
	}
	if after[web] == before[web] || !strings.Contains(after[web], "status=running") {
		t.Errorf("changed web was not recreated and running: before %s, after %s", before[web], after[web])
	}
	if len(after) != 2 {
		t.Errorf("want exactly 2 containers after the recreate, got %v", after)
	}
}

func TestDryRunAndPlanChangeNothing(t *testing.T) {
	p := newProjectEnv(t, twoServices)
	out := p.mustRun("up", "-d", "--dry-run")
	for _, want := range []string{"+ network " + p.project + "_default", "+ container " + p.project + "-web-1", "+ container " + p.project + "-worker-1", "Plan: 3 to add, 0 to change, 0 to remove."} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	if st := p.observe(); len(st.Containers) != 0 || len(st.Networks) != 0 {
		t.Errorf("dry-run changed the host: %d containers, %d networks", len(st.Containers), len(st.Networks))
	}
}

func TestDownRemovesTheProjectWithoutTheComposeFile(t *testing.T) {
	p := newProjectEnv(t, twoServices+`
    volumes: [data:/data]
volumes:
  data: {}
`)
	p.mustRun("up", "-d")
	if err := os.Remove(filepath.Join(p.dir, "compose.yaml")); err != nil {
		t.Fatal(err)
	}
	p.mustRun("-p", p.project, "down", "-v", "-t", "1")
	st := p.observe()
	if len(st.Containers)+len(st.Networks)+len(st.Volumes) != 0 {
		t.Errorf("after down -v: containers %v, networks %v, volumes %v", st.Containers, st.Networks, st.Volumes)
	}
	if out := p.mustRun("-p", p.project, "ps", "-a", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("ps -a after down lists %q", out)
	}
}

func TestPsAndLsShowTheRunningProject(t *testing.T) {
	p := newProjectEnv(t, twoServices)
	p.mustRun("up", "-d")
	table := p.mustRun("ps")
	for _, want := range []string{"NAME", "SERVICE", "STATUS", p.project + "-web-1", p.project + "-worker-1", "Up "} {
		if !strings.Contains(table, want) {
			t.Errorf("ps lacks %q:\n%s", want, table)
		}
	}
	jsonLines := strings.Split(strings.TrimSpace(p.mustRun("ps", "--format", "json")), "\n")
	if len(jsonLines) != 2 || !strings.Contains(jsonLines[0], `"Service":"web"`) || !strings.Contains(jsonLines[0], `"State":"running"`) {
		t.Errorf("ps --format json should print one JSON object per line:\n%s", strings.Join(jsonLines, "\n"))
	}
	if services := p.mustRun("ps", "--services"); services != "web\nworker\n" {
		t.Errorf("ps --services = %q", services)
	}
	if ls := p.mustRun("ls"); !strings.Contains(ls, p.project) || !strings.Contains(ls, "running(2)") {
		t.Errorf("ls lacks the project running(2):\n%s", ls)
	}
}
