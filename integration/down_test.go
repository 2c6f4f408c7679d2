package integration

import (
	"strings"
	"testing"
	"time"
)

func TestDownRmiAllRemovesTheProjectsImages(t *testing.T) {
	p := newProjectEnv(t, twoServices)
	p.mustRun("up", "-d")
	p.mustRun("down", "--rmi", "all", "-t", "1")
	images := p.mustRun("image", "ls", "-q")
	if strings.TrimSpace(images) != "" {
		t.Errorf("images left after down --rmi all:\n%s", images)
	}
	if r := p.run("down", "--rmi", "some"); r.code == 0 || !strings.Contains(r.stderr, "--rmi") {
		t.Errorf("down --rmi some: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestPsStatusFilterAndAll(t *testing.T) {
	p := newProjectEnv(t, twoServices+`
  once:
    image: busybox
    command: ["true"]
`)
	p.mustRun("up", "-d")
	waitFor(t, func() bool {
		for _, c := range p.observe().Containers {
			if c.Service == "once" {
				return c.Status == "exited"
			}
		}
		return false
	})
	if out := p.mustRun("ps", "--services"); strings.Contains(out, "once") {
		t.Errorf("ps without -a lists the exited container:\n%s", out)
	}
	if out := p.mustRun("ps", "-a"); !strings.Contains(out, "Exited (0)") {
		t.Errorf("ps -a lacks the exited container:\n%s", out)
	}
	if out := p.mustRun("ps", "--status", "exited", "--services"); out != "once\n" {
		t.Errorf("ps --status exited --services = %q", out)
	}
	if out := p.mustRun("ps", "--status", "running", "--services"); out != "web\nworker\n" {
		t.Errorf("ps --status running --services = %q", out)
	}
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
