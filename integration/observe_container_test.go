package integration

import (
	"reflect"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
)

// A container observed alone (what the daemon does on its event) is the
// container as Observe shows it in the whole State, in every status; a
// removed one is not found.
func TestDriverObserveContainerEqualsObserve(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	web := e.spec("web", n.Name)
	web.Network.Networks[0].Aliases = []string{"www"}
	web.Health = &engine.Healthcheck{Test: []string{"CMD", "true"}, Interval: time.Hour}
	running := e.run(web).ID
	created, err := e.d.CreateContainer(e.ctx, e.spec("db", n.Name))
	if err != nil {
		t.Fatal(err)
	}
	job := e.spec("job", n.Name)
	job.Process.Command = []string{"sh", "-c", "exit 3"}
	exited, err := e.d.CreateContainer(e.ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.d.StartContainer(e.ctx, exited); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return e.container(exited).Status == engine.StatusExited })

	for id, want := range map[string]engine.Status{running: engine.StatusRunning, created: engine.StatusCreated, exited: engine.StatusExited} {
		alone, err := e.d.ObserveContainer(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		inState := e.container(id)
		if alone.Status != want {
			t.Errorf("%s observed alone is %s, want %s", alone.Name, alone.Status, want)
		}
		if !reflect.DeepEqual(alone, inState) {
			t.Errorf("%s observed alone differs from Observe's:\nalone:   %+v\nin state: %+v", inState.Name, alone, inState)
		}
	}
	if c := e.container(running); c.Health == "" || len(c.Addresses) != 1 || len(c.Aliases[n.Name]) != 1 {
		t.Errorf("the running container lacks what the DNS answers need (health, address, alias): %+v", c)
	}

	if err := e.d.RemoveContainer(e.ctx, running); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.ObserveContainer(e.ctx, running); !errdefs.IsNotFound(err) {
		t.Errorf("a removed container observed alone: %v, want a not-found error", err)
	}
	if _, err := e.d.ObserveContainer(e.ctx, "never-was"); !errdefs.IsNotFound(err) {
		t.Errorf("an unknown container observed alone: %v, want a not-found error", err)
	}
}
