package enginetest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/enginetest"
)

func TestFakeConformance(t *testing.T) {
	enginetest.RunDriverSuite(t, func(t *testing.T) engine.Driver { return enginetest.NewFake() },
		enginetest.SuiteOptions{Image: "docker.io/library/busybox:latest", Command: []string{"sleep", "3600"}})
}

func TestFakeIsStricterThanNeededToCatchOrderingBugs(t *testing.T) {
	ctx := t.Context()
	f := enginetest.NewFake()
	spec := engine.ContainerSpec{Name: "p-web-1", Project: "p", Service: "web", Number: 1, Image: "img",
		Network: engine.NetworkConfig{Networks: []engine.NetworkAttachment{{Network: "p_default"}}}}
	if _, err := f.CreateContainer(ctx, spec); !errdefs.IsNotFound(err) {
		t.Errorf("create without its image: %v, want NotFound", err)
	}
	f.AddImage("img", "sha256:1")
	if _, err := f.CreateContainer(ctx, spec); !errdefs.IsNotFound(err) {
		t.Errorf("create without its network: %v, want NotFound", err)
	}
	if err := f.CreateNetwork(ctx, engine.NetworkSpec{Name: "p_default", Project: "p"}); err != nil {
		t.Fatal(err)
	}
	id, err := f.CreateContainer(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := f.RemoveContainer(ctx, id); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("remove a running container: %v, want FailedPrecondition", err)
	}
	if err := f.RemoveNetwork(ctx, "p_default"); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("remove a network in use: %v, want FailedPrecondition", err)
	}
}

func TestFakePullPolicies(t *testing.T) {
	ctx := t.Context()
	f := enginetest.NewFake()
	if _, err := f.PullImage(ctx, "img", engine.PullOptions{Policy: engine.PullNever}); !errdefs.IsNotFound(err) {
		t.Errorf("never, absent: %v, want NotFound", err)
	}
	f.SetRemote("img", "sha256:1")
	if d, _ := f.PullImage(ctx, "img", engine.PullOptions{Policy: engine.PullMissing}); d != "sha256:1" {
		t.Errorf("missing, absent: digest %q, want the registry's", d)
	}
	f.SetRemote("img", "sha256:2")
	if d, _ := f.PullImage(ctx, "img", engine.PullOptions{Policy: engine.PullMissing}); d != "sha256:1" {
		t.Errorf("missing, present: digest %q, want the local one", d)
	}
	if d, _ := f.PullImage(ctx, "img", engine.PullOptions{Policy: engine.PullAlways}); d != "sha256:2" {
		t.Errorf("always: digest %q, want the registry's new one", d)
	}
}

func TestFakeBeforeHookFailsCallsAndCallsAreRecorded(t *testing.T) {
	ctx := t.Context()
	f := enginetest.NewFake()
	boom := errors.New("boom")
	f.Before = func(_ context.Context, c enginetest.Call) error {
		if c.Method == "CreateVolume" && c.Name == "bad" {
			return boom
		}
		return nil
	}
	if err := f.CreateVolume(ctx, engine.VolumeSpec{Name: "bad"}); !errors.Is(err, boom) {
		t.Errorf("hooked call: %v, want boom", err)
	}
	if err := f.CreateVolume(ctx, engine.VolumeSpec{Name: "good"}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(f.Calls()); got != "[CreateVolume good]" {
		t.Errorf("calls %s, want only the one that took effect", got)
	}
}

func TestFakeIsSafeForConcurrentUse(t *testing.T) {
	ctx := t.Context()
	f := enginetest.NewFake()
	f.AddImage("img", "sha256:1")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec := engine.ContainerSpec{Name: fmt.Sprintf("p-web-%d", i), Project: "p", Service: "web", Number: i, Image: "img"}
			id, err := f.CreateContainer(ctx, spec)
			if err == nil {
				err = f.StartContainer(ctx, id)
			}
			if err != nil {
				t.Error(err)
			}
			_, _ = f.Observe(ctx, "p")
		}()
	}
	wg.Wait()
	st, _ := f.Observe(ctx, "p")
	if len(st.Containers) != 20 {
		t.Errorf("%d containers, want 20", len(st.Containers))
	}
}
