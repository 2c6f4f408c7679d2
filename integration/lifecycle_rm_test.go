package integration

import (
	"strings"
	"testing"

	"github.com/stackdev/stack/engine"
)

const rmProject = `
x-sleeper: &sleeper
  image: busybox
  command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
services:
  db:
    <<: *sleeper
    volumes: ["/data"]
  web:
    <<: *sleeper
    depends_on: [db]
`

func (p *projectEnv) services() map[string]bool {
	out := map[string]bool{}
	for _, c := range p.observe().ProjectContainers(p.project) {
		out[c.Service] = true
	}
	return out
}

func anonymousVolumes(st engine.State, project string) []string {
	var out []string
	for _, v := range st.Volumes {
		if v.Project == project && v.ConfigHash == "" {
			out = append(out, v.Name)
		}
	}
	return out
}

func TestLifecycleRmRemovesOnlyStoppedContainersAndAsksFirst(t *testing.T) {
	p := newProjectEnv(t, rmProject)
	p.mustRun("up", "-d")
	if r := p.run("rm", "-f"); r.code != 0 || !strings.Contains(r.stderr, "No stopped containers") {
		t.Errorf("rm with everything running: exit %d, stderr %q", r.code, r.stderr)
	}

	p.mustRun("stop", "web")
	r := p.run("rm", "web")
	if r.code == 0 || !strings.Contains(r.stderr, "Going to remove "+p.project+"-web-1") || !strings.Contains(r.stderr, "-f") {
		t.Errorf("rm without a terminal and without -f: exit %d, stderr %q", r.code, r.stderr)
	}
	if !p.services()["web"] {
		t.Fatal("rm removed web without confirmation")
	}
	p.mustRun("rm", "-f")
	if got := p.services(); got["web"] || !got["db"] {
		t.Errorf("after stop web, rm -f: services %v, want db only", got)
	}
}

func TestLifecycleRmStopsFirstAndRemovesAnonymousVolumes(t *testing.T) {
	p := newProjectEnv(t, rmProject)
	p.mustRun("up", "-d")
	vols := anonymousVolumes(p.observe(), p.project)
	if len(vols) != 1 {
		t.Fatalf("want one anonymous volume for db, got %v", vols)
	}
	p.mustRun("rm", "-s", "-f", "-v", "db")
	st := p.observe()
	for _, c := range st.ProjectContainers(p.project) {
		if c.Service == "db" {
			t.Errorf("db still there: %s %s", c.Name, c.Status)
		}
	}
	if left := anonymousVolumes(st, p.project); len(left) != 0 {
		t.Errorf("rm -v left the anonymous volume %v", left)
	}
	// Without -v the volume stays.
	p.mustRun("up", "-d")
	p.mustRun("rm", "-sf", "db")
	if left := anonymousVolumes(p.observe(), p.project); len(left) != 1 {
		t.Errorf("rm without -v: anonymous volumes %v, want one kept", left)
	}
}
