package integration

import (
	"strings"
	"testing"
	"time"
)

// A probe that outlives its timeout is killed (the next probes do not pile
// up in the container) and recorded as Docker records it.
func TestHealthProbeOverItsTimeoutIsKilledAndRecordedAsATimeout(t *testing.T) {
	e := newDNSEnv(t, `
services:
  web:
    image: busybox
    command: `+sleeper+`
    healthcheck:
      test: ["CMD", "sleep", "30"]
      interval: 1s
      timeout: 1s
      retries: 3
`)
	e.mustRun("up", "-d")
	web := e.name("web", 1)
	e.waitPs("(unhealthy)", 30*time.Second)
	hs := e.health(web)
	last := hs.Log[len(hs.Log)-1]
	if last.ExitCode != -1 || last.Output != "Health check exceeded timeout (1s)" {
		t.Fatalf("last probe = %+v, want exit -1 and Docker's timeout message", last)
	}
	if took := last.End.Sub(last.Start); took < time.Second || took > 5*time.Second {
		t.Fatalf("the timed-out probe took %s, want about its 1s timeout", took)
	}
	r := e.exec(web, "ps")
	if n := strings.Count(r.stdout, "sleep 30"); n > 2 {
		t.Fatalf("%d probes still run in the container: the timed-out ones were not killed\n%s", n, r.stdout)
	}
}

// A probe that writes more than a pipe holds is drained to its end (it
// does not block and time out), and its first 4096 bytes are kept.
func TestHealthProbeOutputIsCutAtItsStartAndDrained(t *testing.T) {
	e := newDNSEnv(t, `
services:
  web:
    image: busybox
    command: `+sleeper+`
    healthcheck:
      test: ["CMD-SHELL", "yes | head -c 300000"]
      interval: 1s
      timeout: 5s
      retries: 3
`)
	e.mustRun("up", "-d", "--wait", "--wait-timeout", "30")
	hs := e.health(e.name("web", 1))
	last := hs.Log[len(hs.Log)-1]
	if hs.Status != "healthy" || last.ExitCode != 0 {
		t.Fatalf("health = %s, last probe %d %q; want healthy", hs.Status, last.ExitCode, last.Output)
	}
	if want := strings.Repeat("y\n", 2048); last.Output != want {
		t.Fatalf("the probe's output is %d bytes (%q...), want its first 4096", len(last.Output), last.Output[:min(len(last.Output), 20)])
	}
}
