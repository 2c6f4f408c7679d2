package integration

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stackdev/stack/engine/ctrd"
)

// helloHealth is a hello service whose /healthz is its healthcheck, probed
// every second.
const helloHealth = `
    image: hello
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://localhost:8080/healthz"]
      interval: 1s
      timeout: 2s
      retries: 2
`

// waitPs polls `stack ps` until its output contains want.
func (p *projectEnv) waitPs(want string, limit time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	var out string
	for time.Now().Before(deadline) {
		out = p.mustRun("ps", "-a")
		if strings.Contains(out, want) {
			return out
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.t.Fatalf("stack ps did not show %q within %s:\n%s", want, limit, out)
	return ""
}

// health reads the health the daemon recorded for container name.
func (p *projectEnv) health(name string) ctrd.HealthState {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ctrd.New(ctx, ctrd.Options{Address: env.socket, Namespace: p.namespace, StateDir: p.stateDir})
	if err != nil {
		p.t.Fatal(err)
	}
	defer c.Close()
	hs, _, err := c.LoadHealth(p.containerNamed(name).ID)
	if err != nil {
		p.t.Fatal(err)
	}
	return hs
}

// A healthy service shows (healthy) in ps once `up --wait` returns; when
// its check starts failing it shows (unhealthy) within a few intervals,
// with the failing probe's output recorded.
// inspectedContainer is the part of `stack inspect`'s output (Docker's
// field names) the tests read.
type inspectedContainer struct {
	Name  string
	State struct {
		Running bool
		Health  *struct {
			Status        string
			FailingStreak int
			Log           []struct{ ExitCode int }
		}
	}
	NetworkSettings struct {
		Networks map[string]struct{ IPAddress string }
	}
}

func (e *dnsEnv) inspect(services ...string) []inspectedContainer {
	e.t.Helper()
	out := e.mustRun(append([]string{"inspect"}, services...)...)
	var in []inspectedContainer
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		e.t.Fatalf("stack inspect: %v\n%s", err, out)
	}
	return in
}

// ps and stack inspect show a container's health as the daemon's probes
// find it.
func TestHealthPsShowsHealthyThenUnhealthyAfterTheCheckFails(t *testing.T) {
	e := newDNSEnv(t, "services:\n  web:"+helloHealth)
	e.mustRun("up", "-d", "--wait", "--wait-timeout", "30")
	web := e.name("web", 1)
	out := e.mustRun("ps")
	if !strings.Contains(out, "(healthy)") {
		t.Fatalf("after up --wait, ps does not show (healthy):\n%s", out)
	}
	if r := e.exec(web, "wget", "-qO-", "http://localhost:8080/healthz/fail"); r.code != 0 {
		t.Fatalf("flip /healthz: exit %d: %s", r.code, r.stderr)
	}
	e.waitPs("(unhealthy)", 10*time.Second)
	hs := e.health(web)
	if hs.Status != "unhealthy" || hs.FailingStreak < 2 || len(hs.Log) == 0 || hs.Log[len(hs.Log)-1].ExitCode == 0 {
		t.Fatalf("recorded health = %+v, want unhealthy after 2 failures", hs)
	}
	in := e.inspect("web")
	if len(in) != 1 || in[0].Name != "/"+web || !in[0].State.Running || in[0].State.Health == nil {
		t.Fatalf("stack inspect web = %+v, want %s running with its health", in, web)
	}
	if h := in[0].State.Health; h.Status != "unhealthy" || h.FailingStreak < 2 || len(h.Log) == 0 || h.Log[len(h.Log)-1].ExitCode == 0 {
		t.Fatalf("stack inspect shows health %+v, want unhealthy with the failed probes", h)
	}
	if ip := in[0].NetworkSettings.Networks[e.project+"_default"].IPAddress; ip == "" {
		t.Fatalf("stack inspect shows no address on %s_default: %+v", e.project, in[0].NetworkSettings)
	}

	// A new task is checked anew: the restarted server answers ok again.
	e.mustRun("restart", "-t", "0", "web")
	e.waitPs("(healthy)", 10*time.Second)
	if again := e.health(web); !again.StartedAt.After(hs.StartedAt) || again.FailingStreak != 0 {
		t.Fatalf("health after restart = %+v, want a fresh record for the new task (before: %s)", again, hs.StartedAt)
	}
}

// A check whose command is not in the image makes the container
// unhealthy, and up --wait says why.
func TestHealthCheckCommandMissingFromTheImageIsUnhealthy(t *testing.T) {
	e := newDNSEnv(t, `
services:
  web:
    image: hello
    healthcheck:
      test: ["CMD", "no-such-probe"]
      interval: 1s
      retries: 1
`)
	r := e.run("up", "-d", "--wait", "--wait-timeout", "20")
	if r.code == 0 {
		t.Fatalf("up --wait succeeded with a missing check command:\n%s", r.stdout)
	}
	if want := "container " + e.name("web", 1) + " is unhealthy: "; !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "no-such-probe") {
		t.Fatalf("up --wait's error does not say %q with the command:\n%s", want, r.stderr)
	}
}

// A service that depends on another with service_healthy starts only after
// the dependency's first successful probe.
func TestHealthDependsOnServiceHealthyStartsTheDependentAfterTheDependencyIsHealthy(t *testing.T) {
	e := newDNSEnv(t, `
services:
  db:
    image: hello
    healthcheck:
      test: ["CMD-SHELL", "test -e /tmp/seen || { touch /tmp/seen; exit 1; }"]
      interval: 1s
      timeout: 2s
      retries: 5
  app:
    image: busybox
    command: `+sleeper+`
    depends_on:
      db:
        condition: service_healthy
`)
	e.mustRun("up", "-d")
	app := e.containerNamed(e.name("app", 1))
	hs := e.health(e.name("db", 1))
	var healthyAt time.Time
	for _, probe := range hs.Log {
		if probe.ExitCode == 0 {
			healthyAt = probe.End
			break
		}
	}
	if healthyAt.IsZero() {
		t.Fatalf("db has no successful probe recorded: %+v", hs)
	}
	if app.StartedAt.Before(healthyAt) {
		t.Fatalf("app started at %s, before db was healthy at %s", app.StartedAt, healthyAt)
	}
	if len(hs.Log) < 2 || hs.Log[0].ExitCode == 0 {
		t.Fatalf("db's first probe was meant to fail: %+v", hs.Log)
	}
}

const oneShotCompose = `
services:
  init:
    image: busybox
    command: ["sh", "-c", "echo ran; exit %s"]
  app:
    image: busybox
    command: ` + sleeper + `
    depends_on:
      init:
        condition: service_completed_successfully
`

// service_completed_successfully: a one-shot exiting 0 lets the dependent
// start, and the next up does not run it again; exiting 3 fails up with a
// message naming it, and the dependent is not started.
func TestHealthDependsOnCompletedSuccessfully(t *testing.T) {
	e := newDNSEnv(t, strings.Replace(oneShotCompose, "%s", "0", 1))
	e.mustRun("up", "-d", "--wait", "--wait-timeout", "30")
	if st := e.statuses(); st["init"] != "exited" || st["app"] != "running" {
		t.Fatalf("statuses = %v, want init exited (0) and app running", st)
	}
	if out := e.mustRun("up", "-d"); !strings.Contains(out, "nothing to do") {
		t.Fatalf("the second up did something although init completed and nothing changed:\n%s", out)
	}
	if runs := strings.Count(e.mustRun("logs", "--no-log-prefix", "init"), "ran"); runs != 1 {
		t.Fatalf("init ran %d times over two ups, want once", runs)
	}
	e.mustRun("down", "-t", "0")

	e.writeCompose(strings.Replace(oneShotCompose, "%s", "3", 1))
	r := e.run("up", "-d")
	if r.code == 0 {
		t.Fatalf("up succeeded although init exited 3:\n%s", r.stdout)
	}
	t.Logf("up's error:\n%s", r.stderr)
	if want := "container " + e.name("init", 1) + " exited (3)"; !strings.Contains(r.stderr, want) {
		t.Fatalf("up's error does not say %q:\n%s", want, r.stderr)
	}
	if st := e.statuses(); st["app"] == "running" {
		t.Fatalf("app was started although init failed: %v", st)
	}
}

// up --wait gives up after --wait-timeout on a service that never becomes
// healthy, saying which container is not ready.
func TestHealthUpWaitTimesOutOnANeverHealthyService(t *testing.T) {
	e := newDNSEnv(t, `
services:
  web:
    image: hello
    healthcheck:
      test: ["CMD-SHELL", "exit 1"]
      interval: 1s
      retries: 100
`)
	start := time.Now()
	r := e.run("up", "-d", "--wait", "--wait-timeout", "5")
	took := time.Since(start)
	t.Logf("up --wait's error:\n%s", r.stderr)
	if r.code == 0 {
		t.Fatalf("up --wait succeeded for a never-healthy service:\n%s", r.stdout)
	}
	for _, want := range []string{"application not healthy after 5s: container " + e.name("web", 1) + " is starting\n"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("up --wait's error does not say %q:\n%s", want, r.stderr)
		}
	}
	if took > 30*time.Second {
		t.Errorf("up --wait --wait-timeout 5 took %s", took)
	}
}

// DNS answers only the healthy replicas: once one of two turns unhealthy,
// the service's name resolves to the other alone, until it is healthy again.
func TestHealthDNSDropsAnUnhealthyReplica(t *testing.T) {
	e := newDNSEnv(t, `
services:
  web:`+helloHealth+`    deploy:
      replicas: 2
  client:
    image: busybox
    command: `+sleeper+`
`)
	e.mustRun("up", "-d", "--wait", "--wait-timeout", "30")
	st := e.observe()
	def := e.project + "_default"
	client := e.container(st, e.name("client", 1)).ID
	keep := e.container(st, e.name("web", 1)).Addresses[def]
	if got, r := nslookup(t, e.namespace, client, "web"); len(got) != 2 {
		t.Fatalf("nslookup web with two healthy replicas = %v\n%s%s", got, r.stdout, r.stderr)
	}
	if r := e.exec(e.name("web", 2), "wget", "-qO-", "http://localhost:8080/healthz/fail"); r.code != 0 {
		t.Fatalf("flip /healthz: exit %d: %s", r.code, r.stderr)
	}
	waitLookup := func(what string, ok func([]string) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		var got []string
		for time.Now().Before(deadline) {
			if got, _ = nslookup(t, e.namespace, client, "web"); ok(got) {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("nslookup web %s = %v", what, got)
	}
	waitLookup("after web-2 turned unhealthy, want only "+keep, func(got []string) bool { return len(got) == 1 && got[0] == keep })

	// Healthy again, it comes back into the answers.
	if r := e.exec(e.name("web", 2), "wget", "-qO-", "http://localhost:8080/healthz/ok"); r.code != 0 {
		t.Fatalf("flip /healthz back: exit %d: %s", r.code, r.stderr)
	}
	waitLookup("after web-2 is healthy again, want both replicas", func(got []string) bool { return len(got) == 2 })
}

// A dependency that turns unhealthy fails up at once, with the container's
// name and its check's last output; the dependent is not started.
func TestHealthDependsOnServiceHealthyFailsWithTheUnhealthyOutput(t *testing.T) {
	e := newDNSEnv(t, `
services:
  db:
    image: hello
    healthcheck:
      test: ["CMD-SHELL", "echo db is down; exit 1"]
      interval: 1s
      retries: 2
  app:
    image: busybox
    command: `+sleeper+`
    depends_on:
      db:
        condition: service_healthy
`)
	r := e.run("up", "-d")
	if r.code == 0 {
		t.Fatalf("up succeeded although db is unhealthy:\n%s", r.stdout)
	}
	if want := "container " + e.name("db", 1) + " is unhealthy: db is down"; !strings.Contains(r.stderr, want) {
		t.Fatalf("up's error does not say %q:\n%s", want, r.stderr)
	}
	if st := e.statuses(); st["app"] == "running" {
		t.Fatalf("app was started although db is unhealthy: %v", st)
	}
}
