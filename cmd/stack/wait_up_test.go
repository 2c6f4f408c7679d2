package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
)

func TestContainerReadyNamesTheContainerAndTheReason(t *testing.T) {
	run := func(health string) engine.Container {
		return engine.Container{Name: "p-db-1", Status: engine.StatusRunning, Health: health}
	}
	exited := func(code int) engine.Container {
		return engine.Container{Name: "p-init-1", Status: engine.StatusExited, ExitCode: code}
	}
	cases := []struct {
		c        engine.Container
		cond     string
		notReady bool
		errHas   string
	}{
		{run("healthy"), condHealthy, false, ""},
		{run("starting"), condHealthy, true, "p-db-1 is starting"},
		{run("unhealthy"), condHealthy, false, "container p-db-1 is unhealthy: boom"},
		{run(""), condHealthy, false, "container p-db-1 has no healthcheck"},
		{run(""), condRunning, false, ""},
		{run("unhealthy"), condRunning, false, "unhealthy"},
		{exited(0), condCompleted, false, ""},
		{exited(3), condCompleted, false, "container p-init-1 exited (3)"},
		{exited(1), condHealthy, false, "container p-init-1 exited (1)"},
		{run(""), condCompleted, true, "has not completed"},
	}
	for _, c := range cases {
		err := containerReady(c.c, c.cond, "boom")
		if c.errHas == "" {
			if err != nil {
				t.Errorf("%s %s: %v, want ready", c.c.Name, c.cond, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.errHas) || errors.Is(err, errNotReady) != c.notReady {
			t.Errorf("%s %s/%s: %v, want %q (not ready: %v)", c.c.Name, c.cond, c.c.Health, err, c.errHas, c.notReady)
		}
	}
}

func TestUpWaitTargetsOneShotsMustComplete(t *testing.T) {
	d := compose.Desired{
		Services: []compose.Service{
			{Name: "init"},
			{Name: "web", DependsOn: []engine.Dependency{{Service: "init", Condition: condCompleted}}},
		},
		Containers: []engine.ContainerSpec{
			{Name: "p-init-1", Service: "init"},
			{Name: "p-web-1", Service: "web", Health: &engine.Healthcheck{Test: []string{"CMD", "true"}}},
			{Name: "p-web-2", Service: "web", Health: &engine.Healthcheck{Test: []string{"NONE"}}},
		},
	}
	got := upWaitTargets(d)
	want := map[string]string{"p-init-1": condCompleted, "p-web-1": condHealthy, "p-web-2": condRunning}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
}
