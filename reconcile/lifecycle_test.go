package reconcile

import (
	"errors"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
)

// threeTier is db ← api (restart: true) ← web (plain depends_on).
func threeTier() engine.State {
	return observed(demo(
		svcDef{name: "db"},
		svcDef{name: "api", deps: []engine.Dependency{{Service: "db", Condition: "service_started", Restart: true, Required: true}}},
		svcDef{name: "web", deps: []engine.Dependency{dep("api")}},
	))
}

func validPlan(t *testing.T, p Plan) Plan {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatalf("invalid plan: %v\n%s", err, p.Graph())
	}
	return p
}

func TestStopGoesDependentsFirstWithTheTimeout(t *testing.T) {
	p := validPlan(t, ComputeStop(threeTier(), "demo", LifecycleOptions{Timeout: 3 * time.Second}))
	wantText(t, "graph", p.Graph(), `
		#0 stop-container demo-web-1 [id-demo-web-]
		#1 stop-container demo-api-1 [id-demo-api-] <- #0
		#2 stop-container demo-db-1 [id-demo-db-1] <- #1`)
	for _, s := range p.Steps {
		if s.Timeout != 3*time.Second {
			t.Errorf("%s: timeout %v, want 3s", s.Resource, s.Timeout)
		}
	}
	wantText(t, "plan", render(p), `
		~ container demo-web-1 (stop)
		~ container demo-api-1 (stop)
		~ container demo-db-1 (stop)

		Plan: 0 to add, 3 to change, 0 to remove.`)
}

func TestStopOneServiceLeavesTheOthersAndSkipsStoppedContainers(t *testing.T) {
	st := threeTier()
	container(t, &st, "demo-web-1").Status = engine.StatusExited
	p := validPlan(t, ComputeStop(st, "demo", LifecycleOptions{Services: []string{"api"}}))
	wantText(t, "graph", p.Graph(), `#0 stop-container demo-api-1 [id-demo-api-]`)
	if p := ComputeStop(st, "demo", LifecycleOptions{Services: []string{"web"}}); !p.Empty() {
		t.Errorf("stopping an exited service planned:\n%s", p.Graph())
	}
}

// A crashed container waiting for its restart policy's backoff is stopped
// too: the stop is recorded, so the daemon does not start it again.
func TestStopAlsoStopsAnExitedContainerAwaitingItsRestart(t *testing.T) {
	st := threeTier()
	for _, name := range []string{"demo-web-1", "demo-api-1", "demo-db-1"} {
		c := container(t, &st, name)
		c.Status, c.StartedAt, c.Restart = engine.StatusExited, time.Unix(1, 0), engine.RestartPolicy{Name: "always"}
	}
	container(t, &st, "demo-api-1").UserStopped = true
	container(t, &st, "demo-db-1").Restart.Name = "no"
	p := validPlan(t, ComputeStop(st, "demo", LifecycleOptions{}))
	wantText(t, "graph", p.Graph(), `#0 stop-container demo-web-1 [id-demo-web-]`)
}

func TestStartGoesDependenciesFirstAndOnlyStartsStoppedContainers(t *testing.T) {
	st := threeTier()
	container(t, &st, "demo-db-1").Status = engine.StatusExited
	container(t, &st, "demo-web-1").Status = engine.StatusCreated
	p, err := ComputeStart(st, "demo", LifecycleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	validPlan(t, p)
	wantText(t, "graph", p.Graph(), `
		#0 start-container demo-db-1 [id-demo-db-1]
		#1 start-container demo-web-1 [id-demo-web-]`)
}

func TestStartOfAServiceStartsWhatItDependsOn(t *testing.T) {
	st := threeTier()
	for _, name := range []string{"demo-db-1", "demo-api-1", "demo-web-1"} {
		container(t, &st, name).Status = engine.StatusExited
	}
	p, err := ComputeStart(st, "demo", LifecycleOptions{Services: []string{"api"}})
	if err != nil {
		t.Fatal(err)
	}
	validPlan(t, p)
	wantText(t, "graph", p.Graph(), `
		#0 start-container demo-db-1 [id-demo-db-1]
		#1 start-container demo-api-1 [id-demo-api-] <- #0`)
}

func TestStartNamesTheServiceWithoutAContainer(t *testing.T) {
	_, err := ComputeStart(threeTier(), "demo", LifecycleOptions{Services: []string{"cache"}})
	var missing MissingServiceError
	if !errors.As(err, &missing) || missing.Service != "cache" {
		t.Fatalf("err = %v, want a MissingServiceError for cache", err)
	}
	if err.Error() != "service cache has no container to start: run `stack up` to create it" {
		t.Errorf("message: %q", err)
	}
}

func TestRestartFollowsOnlyRestartTrueEdges(t *testing.T) {
	p, err := ComputeRestart(threeTier(), "demo", LifecycleOptions{Services: []string{"db"}})
	if err != nil {
		t.Fatal(err)
	}
	validPlan(t, p)
	// api depends on db with restart: true, so it restarts with it; web
	// depends on api without it, so it is left running.
	wantText(t, "graph", p.Graph(), `
		#0 stop-container demo-api-1 [id-demo-api-]
		#1 stop-container demo-db-1 [id-demo-db-1] <- #0
		#2 start-container demo-db-1 [id-demo-db-1] <- #1
		#3 start-container demo-api-1 [id-demo-api-] <- #0 #2`)
	wantText(t, "plan", render(p), `
		~ container demo-api-1 (restart)
		~ container demo-db-1 (restart)

		Plan: 0 to add, 2 to change, 0 to remove.`)
}

func TestRestartNoDepsAndStoppedContainers(t *testing.T) {
	st := threeTier()
	container(t, &st, "demo-db-1").Status = engine.StatusExited
	p, err := ComputeRestart(st, "demo", LifecycleOptions{Services: []string{"db"}, NoDeps: true})
	if err != nil {
		t.Fatal(err)
	}
	validPlan(t, p)
	// An exited container is only started.
	wantText(t, "graph", p.Graph(), `#0 start-container demo-db-1 [id-demo-db-1]`)
}

func TestRestartEverything(t *testing.T) {
	p, err := ComputeRestart(threeTier(), "demo", LifecycleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	validPlan(t, p)
	wantText(t, "graph", p.Graph(), `
		#0 stop-container demo-web-1 [id-demo-web-]
		#1 stop-container demo-api-1 [id-demo-api-] <- #0
		#2 stop-container demo-db-1 [id-demo-db-1] <- #1
		#3 start-container demo-db-1 [id-demo-db-1] <- #2
		#4 start-container demo-api-1 [id-demo-api-] <- #1 #3
		#5 start-container demo-web-1 [id-demo-web-] <- #0 #4`)
}
