package reconcile

import (
	"testing"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/enginetest"
)

func TestDownRemovesInReverseDependencyOrderFromLabels(t *testing.T) {
	st := observed(webAndDB())
	st.Networks = append(st.Networks, engine.Network{Name: "shared"}) // not the project's
	p, err := ComputeDown(st, "demo", DownOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "plan", render(p), `
		- container demo-web-1
		- container demo-web-2
		- container demo-db-1
		- network demo_back
		- network demo_default

		Plan: 0 to add, 0 to change, 5 to remove.`)
	// db stops only after both web containers are gone (read from the
	// depends_on label); networks after every container.
	wantText(t, "graph", p.Graph(), `
		#0 stop-container demo-web-1 [id-demo-web-]
		#1 remove-container demo-web-1 [id-demo-web-] <- #0
		#2 stop-container demo-web-2 [id-demo-web-]
		#3 remove-container demo-web-2 [id-demo-web-] <- #2
		#4 stop-container demo-db-1 [id-demo-db-1] <- #1 #3
		#5 remove-container demo-db-1 [id-demo-db-1] <- #4
		#6 remove-network demo_back <- #1 #3 #5
		#7 remove-network demo_default <- #1 #3 #5`)
}

func TestDownVolumesAndImages(t *testing.T) {
	d := webAndDB()
	st := observed(d)
	p, err := ComputeDown(st, "demo", DownOptions{Volumes: true, RMI: "all"}, &d)
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "plan", render(p), `
		- container demo-web-1
		- container demo-web-2
		- container demo-db-1
		- network demo_back
		- network demo_default
		- volume demo_data
		- image docker.io/library/busybox:latest
		- image docker.io/library/postgres:16

		Plan: 0 to add, 0 to change, 8 to remove.`)

	if _, err := ComputeDown(st, "demo", DownOptions{RMI: "some"}, nil); err == nil {
		t.Error("--rmi some: no error")
	}
}

func TestDownKeepsExternalVolumesAndWhatOrphansUse(t *testing.T) {
	d := demo(svcDef{name: "web", volumes: []string{"cache"}})
	d.Volumes[0].External = true
	st := observed(demo(svcDef{name: "web", volumes: []string{"cache"}}, svcDef{name: "old"}))
	p, err := ComputeDown(st, "demo", DownOptions{Volumes: true}, &d)
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "plan", render(p), `
		- container demo-web-1

		Plan: 0 to add, 0 to change, 1 to remove.
		Warning: found orphan containers (demo-old-1) for this project: run with --remove-orphans to remove them
		Warning: network demo_default is kept: demo-old-1 still use it`)

	p, err = ComputeDown(st, "demo", DownOptions{Volumes: true, RemoveOrphans: true}, &d)
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "with --remove-orphans", render(p), `
		- container demo-web-1
		- container demo-old-1
		- network demo_default

		Plan: 0 to add, 0 to change, 3 to remove.`)
}

func TestDownOfNothingIsEmpty(t *testing.T) {
	p, err := ComputeDown(engine.State{}, "demo", DownOptions{Volumes: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() {
		t.Errorf("down of an absent project plans:\n%s", p)
	}
}

func TestApplyDownLeavesNothingOfTheProject(t *testing.T) {
	f := enginetest.NewFake()
	d := webAndDB()
	if _, err := converge(t, f, d, Options{}, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	st, _ := f.Observe(t.Context(), "demo")
	p, err := ComputeDown(st, "demo", DownOptions{Volumes: true, RMI: "all"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(t.Context(), f, p, ApplyOptions{Parallel: 4}); err != nil {
		t.Fatal(err)
	}
	st, _ = f.Observe(t.Context(), "")
	if len(st.Containers)+len(st.Networks)+len(st.Volumes)+len(st.Images) != 0 {
		t.Errorf("left after down -v --rmi all: %+v", st)
	}
}

func TestOnlyVolumeRemovalsAreDestructive(t *testing.T) {
	st := observed(webAndDB())
	p, err := ComputeDown(st, "demo", DownOptions{Volumes: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Destructive()
	if len(d) != 1 || d[0].Name != "demo_data" {
		t.Errorf("destructive changes %+v, want the removal of demo_data", d)
	}
	if p, _ := ComputeDown(st, "demo", DownOptions{}, nil); len(p.Destructive()) != 0 {
		t.Errorf("down without -v is destructive: %+v", p.Destructive())
	}
}
