package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
)

const waitProject = `
services:
  job:
    image: busybox
    command: ["sh", "-c", "sleep 2; exit 3"]
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`

func TestLifecycleWaitExitsWithTheFirstContainersCode(t *testing.T) {
	p := newProjectEnv(t, waitProject)
	p.mustRun("up", "-d")
	t0 := time.Now()
	r := p.run("wait", "job", "web")
	if r.code != 3 {
		t.Fatalf("wait job web: exit %d, want job's 3\nstderr: %s", r.code, r.stderr)
	}
	if d := time.Since(t0); d > 15*time.Second {
		t.Errorf("wait took %v for a job of 2s", d)
	}
	// An exited container answers at once with its code.
	if r := p.run("wait", "job"); r.code != 3 {
		t.Errorf("wait on the exited job: exit %d, want 3", r.code)
	}
	wantStatuses(t, p.statuses(), map[string]engine.Status{"web": engine.StatusRunning})
}

func TestLifecycleWaitDownProject(t *testing.T) {
	p := newProjectEnv(t, waitProject)
	p.mustRun("up", "-d")
	done := make(chan result, 1)
	go func() { done <- p.run("wait", "--down-project", "web") }()
	time.Sleep(time.Second)
	p.mustRun("kill", "-s", "TERM", "web")
	select {
	case r := <-done:
		if r.code != 0 {
			t.Fatalf("wait --down-project web: exit %d, stderr %s", r.code, r.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("wait did not return within 30s of web exiting")
	}
	if left := p.observe().ProjectContainers(p.project); len(left) != 0 {
		var names []string
		for _, c := range left {
			names = append(names, c.Name)
		}
		t.Errorf("--down-project left %s", strings.Join(names, ", "))
	}
}
