package reconcile

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
)

// webAndDB is the project most tests start from: web (2 replicas) depends
// on db, which keeps its data in a volume on a back network.
func webAndDB(dbEnv ...string) compose.Desired {
	return demo(
		svcDef{name: "db", image: postgres, env: dbEnv, volumes: []string{"data"}, networks: []string{"back"}},
		svcDef{name: "web", replicas: 2, deps: []engine.Dependency{dep("db")}, networks: []string{"default", "back"}},
	)
}

func TestFreshUpCreatesEverythingInDependencyOrder(t *testing.T) {
	p := compute(t, webAndDB(), engine.State{}, Options{})
	wantText(t, "plan", render(p), `
		↓ image docker.io/library/busybox:latest (not present)
		↓ image docker.io/library/postgres:16 (not present)
		+ network demo_back
		+ network demo_default
		+ volume demo_data
		+ container demo-db-1
		+ container demo-web-1
		+ container demo-web-2

		Plan: 2 to pull, 6 to add, 0 to change, 0 to remove.`)
	// web is created after db started, on its image, networks and volume.
	wantText(t, "graph", p.Graph(), `
		#0 pull-image docker.io/library/busybox:latest [missing]
		#1 pull-image docker.io/library/postgres:16 [missing]
		#2 create-network demo_back
		#3 create-network demo_default
		#4 create-volume demo_data
		#5 create-container demo-db-1 <- #1 #2 #4
		#6 start-container demo-db-1 [#5] <- #5
		#7 create-container demo-web-1 <- #0 #2 #3 #6
		#8 start-container demo-web-1 [#7] <- #7
		#9 create-container demo-web-2 <- #0 #2 #3 #6
		#10 start-container demo-web-2 [#9] <- #9`)
}

func TestUpToDateProjectHasNothingToDo(t *testing.T) {
	d := webAndDB()
	p := compute(t, d, observed(d), Options{})
	if !p.Empty() {
		t.Fatalf("plan is not empty:\n%s", p)
	}
	wantText(t, "plan", render(p), `No changes. Project demo is up to date: nothing to do.`)
}

func TestChangedConfigHashReplacesCreateFirst(t *testing.T) {
	st := observed(webAndDB())
	p := compute(t, webAndDB("POSTGRES_DB=app"), st, Options{})
	wantText(t, "plan", render(p), `
		~ container demo-db-1 (config changed)

		Plan: 0 to add, 1 to change, 0 to remove.`)
	// compose's order: create new under a temporary name, stop old, remove
	// old, rename new, start new. web depends on db without restart: untouched.
	wantText(t, "graph", p.Graph(), `
		#0 create-container demo-db-1 [as id-demo-db-1_demo-db-1]
		#1 stop-container demo-db-1 [id-demo-db-1] <- #0
		#2 remove-container demo-db-1 [id-demo-db-1] <- #1
		#3 rename-container demo-db-1 [#0 -> demo-db-1] <- #0 #2
		#4 start-container demo-db-1 [#0] <- #0 #3`)
	if got := p.Steps[0].Container.Labels[engine.LabelReplace]; got != "demo-db-1" {
		t.Errorf("replacement carries %s=%q, want demo-db-1", engine.LabelReplace, got)
	}
}

func TestChangedImageDigestReplacesItsContainers(t *testing.T) {
	st := observed(webAndDB())
	st.Images[busybox] = "sha256:newer"
	p := compute(t, webAndDB(), st, Options{})
	wantText(t, "plan", render(p), `
		~ container demo-web-1 (image changed)
		~ container demo-web-2 (image changed)

		Plan: 0 to add, 2 to change, 0 to remove.`)
}

func TestScaleUpNumbersFromHighestExisting(t *testing.T) {
	st := observed(webAndDB())
	// demo-web-1 was removed by hand: numbering continues after 2.
	st.Containers = slices.DeleteFunc(st.Containers, func(c engine.Container) bool { return c.Name == "demo-web-1" })
	d := demo(
		svcDef{name: "db", image: postgres, volumes: []string{"data"}, networks: []string{"back"}},
		svcDef{name: "web", replicas: 4, deps: []engine.Dependency{dep("db")}, networks: []string{"default", "back"}},
	)
	p := compute(t, d, st, Options{})
	wantText(t, "plan", render(p), `
		+ container demo-web-3 (scale up)
		+ container demo-web-4 (scale up)
		+ container demo-web-5 (scale up)

		Plan: 3 to add, 0 to change, 0 to remove.`)
	if got := p.Steps[0].Container.Labels[engine.LabelNumber]; got != "3" {
		t.Errorf("demo-web-3 is created with number label %q, want 3", got)
	}
}

func TestScaleDownRemovesHighestNumbersFirst(t *testing.T) {
	four := demo(svcDef{name: "web", replicas: 4})
	p := compute(t, demo(svcDef{name: "web", replicas: 2}), observed(four), Options{})
	wantText(t, "plan", render(p), `
		- container demo-web-3 (scale down)
		- container demo-web-4 (scale down)

		Plan: 0 to add, 0 to change, 2 to remove.`)
	wantText(t, "graph", p.Graph(), `
		#0 stop-container demo-web-3 [id-demo-web-]
		#1 remove-container demo-web-3 [id-demo-web-] <- #0
		#2 stop-container demo-web-4 [id-demo-web-]
		#3 remove-container demo-web-4 [id-demo-web-] <- #2`)
}

func TestScaleDownRemovesDivergedContainersBeforeUpToDateOnes(t *testing.T) {
	st := observed(demo(svcDef{name: "web", replicas: 3}))
	container(t, &st, "demo-web-1").ConfigHash = "old"
	p := compute(t, demo(svcDef{name: "web", replicas: 2}), st, Options{})
	wantText(t, "plan", render(p), `
		- container demo-web-1 (scale down)

		Plan: 0 to add, 0 to change, 1 to remove.`)
}

func TestOrphansAreWarnedAboutUnlessRemoved(t *testing.T) {
	old := demo(svcDef{name: "web"}, svcDef{name: "old"})
	d := demo(svcDef{name: "web"})
	p := compute(t, d, observed(old), Options{})
	wantText(t, "plan", render(p), `
		No changes. Project demo is up to date: nothing to do.
		Warning: found orphan containers (demo-old-1) for this project: if you removed or renamed their service in the compose file, run this command with --remove-orphans to clean them up`)

	p = compute(t, d, observed(old), Options{RemoveOrphans: true})
	wantText(t, "plan", render(p), `
		- container demo-old-1 (orphan)

		Plan: 0 to add, 0 to change, 1 to remove.`)
}

// A service still declared in the compose files but left out of this run
// (by profiles or by naming other services) owns its containers: they are
// neither warned about nor removed as orphans.
func TestContainersOfDeclaredButUnselectedServicesAreNotOrphans(t *testing.T) {
	old := demo(svcDef{name: "web"}, svcDef{name: "worker"})
	d := demo(svcDef{name: "web"})
	d.Declared = []string{"web", "worker"}
	p := compute(t, d, observed(old), Options{RemoveOrphans: true})
	wantText(t, "plan", render(p), `
		No changes. Project demo is up to date: nothing to do.`)
}

func TestTheBriefsExamplePlan(t *testing.T) {
	before := demo(svcDef{name: "db"}, svcDef{name: "old"})
	after := demo(svcDef{name: "db", env: []string{"POSTGRES_DB=app"}}, svcDef{name: "web"})
	p := compute(t, after, observed(before), Options{RemoveOrphans: true})
	wantText(t, "plan", render(p), `
		~ container demo-db-1 (config changed)
		+ container demo-web-1
		- container demo-old-1 (orphan)

		Plan: 1 to add, 1 to change, 1 to remove.`)
}

func TestForceRecreateAndNoRecreate(t *testing.T) {
	d := webAndDB()
	p := compute(t, d, observed(d), Options{ForceRecreate: true})
	wantText(t, "force", p.String(), `
		~ container demo-db-1 (forced)
		~ container demo-web-1 (forced)
		~ container demo-web-2 (forced)

		Plan: 0 to add, 3 to change, 0 to remove.`)

	p = compute(t, webAndDB("POSTGRES_DB=app"), observed(d), Options{NoRecreate: true})
	if !p.Empty() {
		t.Errorf("--no-recreate with a changed config plans:\n%s", p)
	}
	if _, err := Compute(d, observed(d), Options{ForceRecreate: true, NoRecreate: true}); err == nil {
		t.Error("--force-recreate with --no-recreate: no error")
	}
}

func TestStoppedUpToDateContainersAreStartedNotRecreated(t *testing.T) {
	d := webAndDB()
	st := observed(d)
	container(t, &st, "demo-db-1").Status = engine.StatusExited
	container(t, &st, "demo-web-2").Status = engine.StatusCreated
	p := compute(t, d, st, Options{})
	wantText(t, "plan", render(p), `
		~ container demo-db-1 (start: exited)
		~ container demo-web-2 (start: created)

		Plan: 0 to add, 2 to change, 0 to remove.`)
	// web-2 starts after db: depends_on orders starts too.
	wantText(t, "graph", p.Graph(), `
		#0 start-container demo-db-1 [id-demo-db-1]
		#1 start-container demo-web-2 [id-demo-web-] <- #0`)

	if p := compute(t, d, st, Options{NoStart: true}); !p.Empty() {
		t.Errorf("--no-start plans starts:\n%s", p)
	}
}

func TestRestartTrueDependentsAreStoppedAndStartedAroundTheReplace(t *testing.T) {
	def := func(env ...string) compose.Desired {
		return demo(
			svcDef{name: "db", env: env},
			svcDef{name: "web", deps: []engine.Dependency{{Service: "db", Condition: "service_started", Restart: true, Required: true}}},
			svcDef{name: "worker", deps: []engine.Dependency{dep("db")}},
		)
	}
	p := compute(t, def("A=2"), observed(def("A=1")), Options{})
	wantText(t, "plan", render(p), `
		~ container demo-db-1 (config changed)
		~ container demo-web-1 (restart: dependency db recreated)

		Plan: 0 to add, 2 to change, 0 to remove.`)
	// web stops before the old db stops; it starts again after the new db
	// started.
	wantText(t, "graph", p.Graph(), `
		#0 create-container demo-db-1 [as id-demo-db-1_demo-db-1]
		#1 stop-container demo-db-1 [id-demo-db-1] <- #0 #5
		#2 remove-container demo-db-1 [id-demo-db-1] <- #1
		#3 rename-container demo-db-1 [#0 -> demo-db-1] <- #0 #2
		#4 start-container demo-db-1 [#0] <- #0 #3
		#5 stop-container demo-web-1 [id-demo-web-]
		#6 start-container demo-web-1 [id-demo-web-] <- #4 #5`)
}

func TestHealthConditionBecomesAWaitStep(t *testing.T) {
	d := demo(
		svcDef{name: "db"},
		svcDef{name: "web", deps: []engine.Dependency{{Service: "db", Condition: "service_healthy", Required: true}}},
	)
	p := compute(t, d, observed(demo(svcDef{name: "db"})), Options{})
	wantText(t, "plan", render(p), `
		… wait until db is healthy
		+ container demo-web-1

		Plan: 1 to add, 0 to change, 0 to remove.`)
	wantText(t, "graph", p.Graph(), `
		#0 create-container demo-web-1 <- #2
		#1 start-container demo-web-1 [#0] <- #0
		#2 wait db [service_healthy id-demo-db-1]`)
}

func TestTargetedServicesLeaveOthersAloneAndAreNeverOrphans(t *testing.T) {
	d := demo(
		svcDef{name: "db", env: []string{"V=2"}},
		svcDef{name: "web", deps: []engine.Dependency{dep("db")}, env: []string{"V=2"}},
		svcDef{name: "admin", env: []string{"V=2"}},
	)
	st := observed(demo(
		svcDef{name: "db", env: []string{"V=1"}},
		svcDef{name: "web", deps: []engine.Dependency{dep("db")}, env: []string{"V=1"}},
		svcDef{name: "admin", env: []string{"V=1"}},
	))
	p := compute(t, d, st, Options{Services: []string{"web"}})
	wantText(t, "web and what it needs", p.String(), `
		~ container demo-db-1 (config changed)
		~ container demo-web-1 (config changed)

		Plan: 0 to add, 2 to change, 0 to remove.`)

	p = compute(t, d, st, Options{Services: []string{"web"}, NoDeps: true})
	wantText(t, "--no-deps", p.String(), `
		~ container demo-web-1 (config changed)

		Plan: 0 to add, 1 to change, 0 to remove.`)

	if _, err := Compute(d, st, Options{Services: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "no such service: nope") {
		t.Errorf("unknown service: error %v, want one naming it", err)
	}
}

func TestDependenciesAreRecreatedOnlyWithAlwaysRecreateDeps(t *testing.T) {
	d := demo(svcDef{name: "db"}, svcDef{name: "web", deps: []engine.Dependency{dep("db")}})
	st := observed(d)
	p := compute(t, d, st, Options{Services: []string{"web"}, ForceRecreate: true})
	wantText(t, "force web", p.String(), `
		~ container demo-web-1 (forced)

		Plan: 0 to add, 1 to change, 0 to remove.`)
	p = compute(t, d, st, Options{Services: []string{"web"}, AlwaysRecreateDeps: true})
	wantText(t, "always recreate deps", p.String(), `
		~ container demo-db-1 (forced)

		Plan: 0 to add, 1 to change, 0 to remove.`)
}

func TestMissingNetworkOrVolumeOnAContainerRecreatesIt(t *testing.T) {
	d := webAndDB()
	st := observed(d)
	web := container(t, &st, "demo-web-1")
	web.Networks = []string{"demo_default"}
	db := container(t, &st, "demo-db-1")
	db.Volumes = nil
	p := compute(t, d, st, Options{})
	wantText(t, "plan", render(p), `
		~ container demo-db-1 (volume demo_data missing)
		~ container demo-web-1 (network demo_back missing)

		Plan: 0 to add, 2 to change, 0 to remove.`)
}

func TestChangedNetworkIsRecreatedWithItsContainers(t *testing.T) {
	d := webAndDB()
	st := observed(d)
	st.Networks[1].ConfigHash = "net-default-old" // demo_default: only web uses it
	p := compute(t, d, st, Options{})
	wantText(t, "plan", render(p), `
		~ network demo_default (config changed)
		~ container demo-web-1 (network demo_default changed)
		~ container demo-web-2 (network demo_default changed)

		Plan: 0 to add, 3 to change, 0 to remove.`)
	// Containers go first, the network is recreated, containers come back.
	wantText(t, "graph", p.Graph(), `
		#0 remove-network demo_default <- #3 #7
		#1 create-network demo_default <- #0
		#2 stop-container demo-web-1 [id-demo-web-]
		#3 remove-container demo-web-1 [id-demo-web-] <- #2
		#4 create-container demo-web-1 <- #1 #3
		#5 start-container demo-web-1 [#4] <- #4
		#6 stop-container demo-web-2 [id-demo-web-]
		#7 remove-container demo-web-2 [id-demo-web-] <- #6
		#8 create-container demo-web-2 <- #1 #7
		#9 start-container demo-web-2 [#8] <- #8`)
}

func TestExternalNetworkMustExist(t *testing.T) {
	d := demo(svcDef{name: "web", networks: []string{"shared"}})
	d.Networks[0].External = true
	d.Networks[0].Name = "shared"
	d.Containers[0].Network.Networks[0].Network = "shared"
	d.Services[0].Networks = []string{"shared"}

	_, err := Compute(d, engine.State{}, Options{})
	if err == nil || !strings.Contains(err.Error(), "network shared is declared external but does not exist") {
		t.Fatalf("missing external network: error %v, want one naming it", err)
	}
	st := engine.State{Networks: []engine.Network{{Name: "shared"}}}
	p := compute(t, d, st, Options{})
	wantText(t, "existing external network", p.String(), `
		↓ image docker.io/library/busybox:latest (not present)
		+ container demo-web-1

		Plan: 1 to pull, 1 to add, 0 to change, 0 to remove.`)
}

func TestPullPolicies(t *testing.T) {
	d := webAndDB()
	st := observed(d)
	p := compute(t, d, st, Options{Pull: engine.PullAlways})
	wantText(t, "always", p.String(), `
		↓ image docker.io/library/busybox:latest (pull policy always)
		↓ image docker.io/library/postgres:16 (pull policy always)

		Plan: 2 to pull, 0 to add, 0 to change, 0 to remove.`)

	delete(st.Images, postgres)
	_, err := Compute(d, st, Options{Pull: engine.PullNever})
	if err == nil || !strings.Contains(err.Error(), "image docker.io/library/postgres:16 of service db is not present") {
		t.Errorf("never with a missing image: error %v, want one naming image and service", err)
	}
}

func TestDependencyCycleIsAnErrorThatPrintsIt(t *testing.T) {
	d := demo(
		svcDef{name: "a", deps: []engine.Dependency{dep("b")}},
		svcDef{name: "b", deps: []engine.Dependency{dep("a")}},
	)
	_, err := Compute(d, engine.State{}, Options{})
	if err == nil || !strings.Contains(err.Error(), "a -> b -> a") {
		t.Errorf("cycle: error %v, want it to print a -> b -> a", err)
	}
}

func TestInterruptedReplaceConverges(t *testing.T) {
	// A previous run created the replacement and failed before removing
	// the old container: the old one goes, the new one takes its name.
	d := webAndDB("POSTGRES_DB=app")
	st := observed(webAndDB())
	newDB := containerFrom(d.Containers[0], engine.StatusCreated)
	newDB.ID, newDB.Name = "id-new", "id-demo-db-1_demo-db-1"
	st.Containers = append(st.Containers, newDB)
	p := compute(t, d, st, Options{})
	wantText(t, "plan", render(p), `
		- container demo-db-1 (duplicate of id-demo-db-1_demo-db-1)
		~ container demo-db-1 (rename from id-demo-db-1_demo-db-1; start: created)

		Plan: 0 to add, 1 to change, 1 to remove.`)
	wantText(t, "graph", p.Graph(), `
		#0 stop-container demo-db-1 [id-demo-db-1]
		#1 remove-container demo-db-1 [id-demo-db-1] <- #0
		#2 rename-container demo-db-1 [id-new -> demo-db-1] <- #1
		#3 start-container demo-db-1 [id-new] <- #2`)
}

func TestSameInputSameText(t *testing.T) {
	d := webAndDB("X=1")
	st := observed(webAndDB())
	st.Containers = append(st.Containers, containerFrom(demo(svcDef{name: "zz"}).Containers[0], engine.StatusExited))
	want := compute(t, d, st, Options{RemoveOrphans: true})
	for i := 0; i < 20; i++ {
		slices.Reverse(st.Containers)
		slices.Reverse(st.Networks)
		slices.Reverse(d.Services)
		slices.Reverse(d.Containers)
		got := compute(t, d, st, Options{RemoveOrphans: true})
		if got.String() != want.String() || got.Graph() != want.Graph() {
			t.Fatalf("run %d differs:\n%s\n%s\nwant\n%s\n%s", i, got, got.Graph(), want, want.Graph())
		}
	}
}

func TestPlanJSON(t *testing.T) {
	p := compute(t, webAndDB("A=1"), observed(webAndDB()), Options{})
	out, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"project": "demo"`, `"change": 1`, `"kind": "rename-container"`, `"reason": "config changed"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("JSON lacks %s:\n%s", want, out)
		}
	}
}

func TestAnotherHashVersionIsNotAChange(t *testing.T) {
	d := demo(svcDef{name: "web"})
	d.Containers[0].Labels[engine.LabelHashVersion] = "2"
	st := observed(demo(svcDef{name: "web"}))
	st.Containers[0].Labels = map[string]string{engine.LabelHashVersion: "1"}
	st.Containers[0].ConfigHash = "computed-the-old-way"
	if p := compute(t, d, st, Options{}); !p.Empty() {
		t.Errorf("a container hashed by version 1 is recreated by version 2:\n%s", p)
	}
	// Its concerns label still tells a real change.
	st.Containers[0].Labels = withConcerns(demo(svcDef{name: "web", env: []string{"A=1"}}).Containers[0]).Labels
	st.Containers[0].Labels[engine.LabelHashVersion] = "1"
	p := compute(t, d, st, Options{})
	wantText(t, "plan", render(p), `
		~ container demo-web-1 (environment changed: A)

		Plan: 0 to add, 1 to change, 0 to remove.`)
}

func TestComputeDoesNotChangeItsInputs(t *testing.T) {
	d := webAndDB("A=1")
	d.Services[1].Replicas = 3
	st := observed(webAndDB())
	container(t, &st, "demo-web-2").Status = engine.StatusExited
	compute(t, d, st, Options{RemoveOrphans: true})
	compute(t, d, engine.State{}, Options{})

	wantD := webAndDB("A=1")
	wantD.Services[1].Replicas = 3
	wantSt := observed(webAndDB())
	container(t, &wantSt, "demo-web-2").Status = engine.StatusExited
	if !reflect.DeepEqual(d, wantD) || !reflect.DeepEqual(st, wantSt) {
		t.Error("Compute changed the desired or observed state it was given")
	}
}

func TestNoRecreateKeepsAChangedNetwork(t *testing.T) {
	d := webAndDB()
	st := observed(d)
	st.Networks[1].ConfigHash = "net-default-old"
	p := compute(t, d, st, Options{NoRecreate: true})
	wantText(t, "plan", render(p), `
		No changes. Project demo is up to date: nothing to do.
		Warning: network demo_default differs from its configuration but is kept: --no-recreate keeps the containers on it`)
}

func TestRefJSONSaysWhichContainer(t *testing.T) {
	for ref, want := range map[Ref]string{{ID: "abc"}: `{"id":"abc"}`, {Step: 3}: `{"step":3}`} {
		got, err := json.Marshal(ref)
		if err != nil || string(got) != want {
			t.Errorf("%+v: %s %v, want %s", ref, got, err, want)
		}
	}
}

// oneShotProject is a migrate job that web waits for with
// service_completed_successfully.
func oneShotProject() compose.Desired {
	return demo(
		svcDef{name: "migrate"},
		svcDef{name: "web", deps: []engine.Dependency{{Service: "migrate", Condition: "service_completed_successfully", Required: true}}},
	)
}

func TestACompletedOneShotIsNotRunAgain(t *testing.T) {
	d := oneShotProject()
	st := observed(d)
	migrate := container(t, &st, "demo-migrate-1")
	migrate.Status, migrate.ExitCode = engine.StatusExited, 0
	p := compute(t, d, st, Options{})
	if !p.Empty() {
		t.Fatalf("a one-shot that exited 0 with its config unchanged is planned again:\n%s", p.Graph())
	}
}

func TestAOneShotRunsAgainWhenItFailedWasStoppedOrNeverRan(t *testing.T) {
	cases := []struct {
		name   string
		change func(c *engine.Container)
		status string
	}{
		{"it exited 1", func(c *engine.Container) { c.Status, c.ExitCode = engine.StatusExited, 1 }, "exited"},
		{"the user stopped it", func(c *engine.Container) {
			c.Status, c.ExitCode, c.UserStopped = engine.StatusExited, 0, true
		}, "exited"},
		{"it was only created", func(c *engine.Container) { c.Status = engine.StatusCreated }, "created"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := oneShotProject()
			st := observed(d)
			tc.change(container(t, &st, "demo-migrate-1"))
			p := compute(t, d, st, Options{})
			wantText(t, "plan", p.String(), `
				~ container demo-migrate-1 (start: `+tc.status+`)

				Plan: 0 to add, 1 to change, 0 to remove.`)
		})
	}
}

func TestAServiceNobodyWaitsOnToCompleteIsStartedAgain(t *testing.T) {
	d := demo(svcDef{name: "web"})
	st := observed(d)
	web := container(t, &st, "demo-web-1")
	web.Status, web.ExitCode = engine.StatusExited, 0
	p := compute(t, d, st, Options{})
	if p.Empty() {
		t.Fatal("an exited service that nothing waits on to complete is left exited; compose starts it again")
	}
}
