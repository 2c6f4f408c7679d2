package integration

import (
	"strings"
	"testing"
)

// With pull_policy: always, an image pushed anew under the same tag is
// pulled and recreates the container in the same `up`, not the next one.
func TestPullAlwaysRecreatesOnANewDigestInTheSameRun(t *testing.T) {
	registry := startRegistry(t)
	ref := registry + "/demo/app:latest"
	p := newProjectEnv(t, `
services:
  app:
    image: `+ref+`
    pull_policy: always
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`)
	p.mustRun("image", "tag", "busybox", ref)
	p.mustRun("image", "push", ref)
	p.mustRun("image", "rm", ref)
	p.mustRun("up", "-d")
	first := fingerprint(p.observe())

	out := p.mustRun("up", "-d")
	if strings.TrimSpace(out) != "nothing to do" {
		t.Errorf("up with an unchanged remote image printed %q, want nothing to do", out)
	}
	p.mustRun("image", "tag", "hello", ref)
	p.mustRun("image", "push", ref)
	p.mustRun("up", "-d")
	second := fingerprint(p.observe())
	name := p.project + "-app-1"
	if second[name] == first[name] {
		t.Fatalf("a new digest under the same tag did not recreate %s in the same run", name)
	}
}
