package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"pgregory.net/rapid"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/enginetest"
)

var serviceNames = []string{"a", "b", "c", "d"}

// genProject draws a project of up to four services with replicas, images,
// environments, depends_on edges (to earlier services only: no cycles),
// networks (one external) and volumes.
func genProject(t *rapid.T, label string) compose.Desired {
	n := rapid.IntRange(1, len(serviceNames)).Draw(t, label+".services")
	var defs []svcDef
	for i := 0; i < n; i++ {
		name := serviceNames[i]
		def := svcDef{
			name:   name,
			image:  rapid.SampledFrom([]string{busybox, postgres}).Draw(t, label+"."+name+".image"),
			env:    []string{rapid.SampledFrom([]string{"V=1", "V=2", "V=3"}).Draw(t, label+"."+name+".env")},
			scale0: rapid.IntRange(0, 5).Draw(t, label+"."+name+".zero") == 0,
		}
		def.replicas = rapid.IntRange(1, 3).Draw(t, label+"."+name+".replicas")
		for j := 0; j < i; j++ {
			if rapid.Bool().Draw(t, fmt.Sprintf("%s.%s.dep%d", label, name, j)) {
				def.deps = append(def.deps, engine.Dependency{
					Service:   serviceNames[j],
					Condition: rapid.SampledFrom([]string{"service_started", "service_healthy"}).Draw(t, fmt.Sprintf("%s.%s.cond%d", label, name, j)),
					Restart:   rapid.Bool().Draw(t, fmt.Sprintf("%s.%s.restart%d", label, name, j)),
					Required:  rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("%s.%s.required%d", label, name, j)) > 0,
				})
			}
		}
		def.networks = rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"default", "back", "ext"}), 1, 3, func(s string) string { return s }).Draw(t, label+"."+name+".networks")
		slices.Sort(def.networks)
		if rapid.Bool().Draw(t, label+"."+name+".volume") {
			def.volumes = []string{"data"}
		}
		defs = append(defs, def)
	}
	d := demo(defs...)
	if rapid.Bool().Draw(t, label+".netchange") {
		for i := range d.Networks {
			d.Networks[i].ConfigHash += "-v2"
		}
	}
	return markExternal(d)
}

// markExternal turns demo_ext into the external network "shared".
func markExternal(d compose.Desired) compose.Desired {
	for i, n := range d.Networks {
		if n.Key == "ext" {
			d.Networks[i] = engine.NetworkSpec{Name: "shared", Key: "ext", External: true}
		}
	}
	for i := range d.Services {
		for j, n := range d.Services[i].Networks {
			if n == "demo_ext" {
				d.Services[i].Networks[j] = "shared"
			}
		}
	}
	for i := range d.Containers {
		for j, a := range d.Containers[i].Network.Networks {
			if a.Network == "demo_ext" {
				d.Containers[i].Network.Networks[j].Network = "shared"
			}
		}
	}
	return d
}

func genOptions(t *rapid.T, d compose.Desired) Options {
	o := Options{
		RemoveOrphans: rapid.Bool().Draw(t, "opts.removeOrphans"),
		NoStart:       rapid.IntRange(0, 4).Draw(t, "opts.noStart") == 0,
		Pull:          rapid.SampledFrom([]engine.PullPolicy{"", engine.PullMissing, engine.PullAlways}).Draw(t, "opts.pull"),
		NoDeps:        rapid.Bool().Draw(t, "opts.noDeps"),
	}
	switch rapid.IntRange(0, 5).Draw(t, "opts.recreate") {
	case 0:
		o.ForceRecreate = true
	case 1:
		o.NoRecreate = true
	case 2:
		o.AlwaysRecreateDeps = true
	}
	if rapid.Bool().Draw(t, "opts.targeted") {
		for _, s := range d.Services {
			if rapid.Bool().Draw(t, "opts.target."+s.Name) {
				o.Services = append(o.Services, s.Name)
			}
		}
	}
	return o
}

// up observes, computes and applies: a two-phase pull first when the policy
// is always, as the CLI does it.
func up(t *rapid.T, f *enginetest.Fake, d compose.Desired, opts Options, aopts ApplyOptions) (Plan, error) {
	ctx := context.Background()
	if opts.Pull == engine.PullAlways {
		st := mustObserve(t, f)
		pulls, err := ComputePulls(d, st, opts)
		if err != nil {
			t.Fatalf("ComputePulls: %v", err)
		}
		if err := Apply(ctx, f, pulls, aopts); err != nil {
			return pulls, err
		}
		opts.Pull = engine.PullMissing
	}
	p, err := Compute(d, mustObserve(t, f), opts)
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("invalid plan: %v\n%s", err, p.Graph())
	}
	return p, Apply(ctx, f, p, aopts)
}

func mustObserve(t *rapid.T, f *enginetest.Fake) engine.State {
	st, err := f.Observe(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Generated projects: up the first one, disturb the host, up the second one
// (with random failures, then again without): the plan is then empty.
func TestPropertyComputeApplyObserveConverges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := enginetest.NewFake()
		f.AddNetwork(engine.Network{Name: "shared", Subnet: "10.9.0.0/24"})
		before := genProject(t, "before")
		if _, err := up(t, f, before, Options{}, ApplyOptions{Parallel: 3}); err != nil {
			t.Fatalf("first up: %v", err)
		}
		disturb(t, f)

		after := genProject(t, "after")
		opts := genOptions(t, after)
		if rapid.Bool().Draw(t, "failures") {
			failAt := rapid.IntRange(0, 20).Draw(t, "failAt")
			var calls atomic.Int32
			f.Before = func(_ context.Context, c enginetest.Call) error {
				if c.Method == "Observe" {
					return nil
				}
				if calls.Add(1) == int32(failAt) {
					return errors.New("injected failure")
				}
				return nil
			}
			_, _ = up(t, f, after, opts, ApplyOptions{Parallel: 2})
			f.Before = nil
		}
		p, err := up(t, f, after, opts, ApplyOptions{Parallel: 4})
		if err != nil {
			t.Fatalf("up: %v\n%s\n%s", err, p, p.Graph())
		}
		opts.Pull, opts.ForceRecreate, opts.AlwaysRecreateDeps = "", false, false
		again, err := Compute(after, mustObserve(t, f), opts)
		if err != nil {
			t.Fatalf("Compute again: %v", err)
		}
		if !again.Empty() {
			t.Fatalf("not converged; applied:\n%s\n%s\nthen:\n%s\n%s", p, p.Graph(), again, again.Graph())
		}
	})
}

// disturb changes the host behind stack's back: stops or removes a
// container, or publishes a new digest for an image and pulls it.
func disturb(t *rapid.T, f *enginetest.Fake) {
	ctx := context.Background()
	st := mustObserve(t, f)
	switch rapid.IntRange(0, 5).Draw(t, "disturb") {
	case 1:
		if len(st.Containers) > 0 {
			c := rapid.SampledFrom(st.Containers).Draw(t, "stopped")
			_ = f.StopContainer(ctx, c.ID, 0)
		}
	case 2:
		if len(st.Containers) > 0 {
			c := rapid.SampledFrom(st.Containers).Draw(t, "removed")
			_ = f.StopContainer(ctx, c.ID, 0)
			_ = f.RemoveContainer(ctx, c.ID)
		}
	case 3:
		f.SetRemote(busybox, "sha256:republished")
		_, _ = f.PullImage(ctx, busybox, engine.PullOptions{Policy: engine.PullAlways})
	case 4:
		// A one-off container (`stack run`), running or finished.
		if len(st.Containers) > 0 {
			c := rapid.SampledFrom(st.Containers).Draw(t, "oneoff.of")
			spec := engine.ContainerSpec{Name: "demo-" + c.Service + "-run-0123", Project: "demo", Service: c.Service,
				OneOff: true, Image: c.Image, ConfigHash: c.ConfigHash}
			id, err := f.CreateContainer(ctx, spec)
			if err == nil && rapid.Bool().Draw(t, "oneoff.running") {
				_ = f.StartContainer(ctx, id)
			}
		}
	case 5:
		// A network or volume removed by hand (refused while in use).
		for _, n := range st.Networks {
			if n.Project == "demo" {
				_ = f.RemoveNetwork(ctx, n.Name)
			}
		}
		for _, v := range st.Volumes {
			_ = f.RemoveVolume(ctx, v.Name)
		}
	}
	f.ResetCalls()
}

// The same input gives the same text, whatever order the observation lists
// things in.
func TestPropertySameInputSameText(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := enginetest.NewFake()
		f.AddNetwork(engine.Network{Name: "shared"})
		if _, err := up(t, f, genProject(t, "before"), Options{}, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		after := genProject(t, "after")
		opts := genOptions(t, after)
		st := mustObserve(t, f)
		first, err := Compute(after, st, opts)
		if err != nil {
			t.Fatal(err)
		}
		perm := rapid.Permutation(st.Containers).Draw(t, "perm")
		st.Containers = perm
		slices.Reverse(st.Networks)
		slices.Reverse(after.Containers)
		second, err := Compute(after, st, opts)
		if err != nil {
			t.Fatal(err)
		}
		if first.String() != second.String() || first.Graph() != second.Graph() {
			t.Fatalf("different plans:\n%s\n%s\n---\n%s\n%s", first, first.Graph(), second, second.Graph())
		}
	})
}

// After any up and disturbance, `down -v --remove-orphans` (with or without
// the compose file) leaves nothing of the project, and only the project.
func TestPropertyDownLeavesNothingOfTheProject(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		f := enginetest.NewFake()
		f.AddNetwork(engine.Network{Name: "shared"})
		before := genProject(t, "before")
		if _, err := up(t, f, before, Options{}, ApplyOptions{Parallel: 3}); err != nil {
			t.Fatalf("up: %v", err)
		}
		disturb(t, f)
		var desired *compose.Desired
		if rapid.Bool().Draw(t, "withFile") {
			desired = &before
		}
		p, err := ComputeDown(mustObserve(t, f), "demo", DownOptions{Volumes: true, RemoveOrphans: true}, desired)
		if err != nil {
			t.Fatal(err)
		}
		if err := Apply(ctx, f, p, ApplyOptions{Parallel: 3}); err != nil {
			t.Fatalf("down: %v\n%s", err, p.Graph())
		}
		st := mustObserve(t, f)
		if len(st.Containers) > 0 {
			t.Fatalf("containers left: %v", st.Containers)
		}
		for _, n := range st.Networks {
			if n.Project == "demo" || n.Name != "shared" {
				t.Fatalf("network left: %+v (or the external one removed)", st.Networks)
			}
		}
		if len(st.Networks) != 1 {
			t.Fatalf("the external network was removed")
		}
		for _, v := range st.Volumes {
			t.Fatalf("volume left: %+v", v)
		}
	})
}
