package reconcile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine/enginetest"
)

// load writes a compose file and loads it as `stack up` does.
func load(t *testing.T, yaml string, opts compose.LoadOptions) compose.Desired {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(dedent(yaml)), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.WorkingDir = dir
	opts.Environment = map[string]string{}
	d, err := compose.Load(t.Context(), opts)
	if err != nil {
		t.Fatalf("compose.Load: %v", err)
	}
	return d
}

// upOnFake applies the plan for d to f and checks that a second plan is
// empty; it returns the first plan.
func upOnFake(t *testing.T, f *enginetest.Fake, d compose.Desired, opts Options) Plan {
	t.Helper()
	p, err := converge(t, f, d, opts, ApplyOptions{Parallel: 4})
	if err != nil {
		t.Fatalf("apply:\n%s\n%v", p.Graph(), err)
	}
	wantConverged(t, f, d, opts)
	return p
}

const quickstart = `
	name: demo
	services:
	  web:
	    image: busybox
	    command: ["sleep", "3600"]
	    ports: ["8080:80"]
	    environment:
	      MODE: prod
	    depends_on: [api]
	    networks: [front, back]
	  api:
	    image: busybox
	    command: ["sleep", "3600"]
	    networks: [back]
	    depends_on:
	      data:
	        condition: service_started
	        restart: true
	  data:
	    image: busybox
	    command: ["sleep", "3600"]
	    volumes: ["data:/data"]
	    networks: [back]
	networks:
	  front: {}
	  back: {}
	volumes:
	  data: {}
`

// The compose package's Desired, applied to the fake, converges; a second
// up has nothing to do; an edit replaces exactly what it touches.
func TestComposeFileConvergesOnTheFake(t *testing.T) {
	f := enginetest.NewFake()
	p := upOnFake(t, f, load(t, quickstart, compose.LoadOptions{}), Options{})
	wantText(t, "first up", p.String(), `
		↓ image docker.io/library/busybox:latest (not present)
		+ network demo_back
		+ network demo_front
		+ volume demo_data
		+ container demo-data-1
		+ container demo-api-1
		+ container demo-web-1

		Plan: 1 to pull, 6 to add, 0 to change, 0 to remove.`)

	edited := load(t, replaceOnce(quickstart, "MODE: prod", "MODE: dev"), compose.LoadOptions{})
	p = upOnFake(t, f, edited, Options{})
	wantText(t, "environment edit", p.String(), `
		~ container demo-web-1 (environment changed: MODE)

		Plan: 0 to add, 1 to change, 0 to remove.`)

	scaled := load(t, replaceOnce(quickstart, "MODE: prod", "MODE: dev"), compose.LoadOptions{Scale: map[string]int{"api": 3}})
	p = upOnFake(t, f, scaled, Options{})
	wantText(t, "--scale api=3", p.String(), `
		+ container demo-api-2 (scale up)
		+ container demo-api-3 (scale up)

		Plan: 2 to add, 0 to change, 0 to remove.`)

	dataEdited := load(t, replaceOnce(replaceOnce(quickstart, "MODE: prod", "MODE: dev"), `volumes: ["data:/data"]`, `volumes: ["data:/var/data"]`),
		compose.LoadOptions{Scale: map[string]int{"api": 3}})
	p = upOnFake(t, f, dataEdited, Options{})
	wantText(t, "restart: true", p.String(), `
		~ container demo-data-1 (volumes changed)
		~ container demo-api-1 (restart: dependency data recreated)
		~ container demo-api-2 (restart: dependency data recreated)
		~ container demo-api-3 (restart: dependency data recreated)

		Plan: 0 to add, 4 to change, 0 to remove.`)
}

func TestComposeDownFromLabelsLeavesNothing(t *testing.T) {
	f := enginetest.NewFake()
	upOnFake(t, f, load(t, quickstart, compose.LoadOptions{}), Options{})
	st, _ := f.Observe(t.Context(), "demo")
	p, err := ComputeDown(st, "demo", DownOptions{Volumes: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "down -v", p.String(), `
		- container demo-web-1
		- container demo-api-1
		- container demo-data-1
		- network demo_back
		- network demo_front
		- volume demo_data

		Plan: 0 to add, 0 to change, 6 to remove.`)
	if err := Apply(t.Context(), f, p, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	st, _ = f.Observe(t.Context(), "demo")
	if len(st.Containers)+len(st.Networks)+len(st.Volumes) != 0 {
		t.Errorf("left after down -v: %+v", st)
	}
}

func replaceOnce(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic("replaceOnce: " + old + " not found")
	}
	return strings.Replace(s, old, new, 1)
}

// A container sharing another's network namespace (network_mode:
// service:X) is recreated with it, after it; a changed secret's content
// recreates the container that reads it.
func TestComposeNamespaceSharingAndSecrets(t *testing.T) {
	const file = `
		name: demo
		services:
		  app:
		    image: busybox
		    command: ["sleep", "3600"]
		    environment: {V: "1"}
		    secrets: [token]
		  sidecar:
		    image: busybox
		    command: ["sleep", "3600"]
		    network_mode: "service:app"
		secrets:
		  token:
		    environment: TOKEN
	`
	loadWith := func(yaml, token string) compose.Desired {
		t.Helper()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(dedent(yaml)), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := compose.Load(t.Context(), compose.LoadOptions{WorkingDir: dir, Environment: map[string]string{"TOKEN": token}})
		if err != nil {
			t.Fatalf("compose.Load: %v", err)
		}
		return d
	}
	f := enginetest.NewFake()
	upOnFake(t, f, loadWith(file, "a"), Options{})

	p := upOnFake(t, f, loadWith(replaceOnce(file, `{V: "1"}`, `{V: "2"}`), "a"), Options{})
	wantText(t, "app edited", p.String(), `
		~ container demo-app-1 (environment changed: V)
		~ container demo-sidecar-1 (shares namespaces with recreated demo-app-1)

		Plan: 0 to add, 2 to change, 0 to remove.`)

	p = upOnFake(t, f, loadWith(replaceOnce(file, `{V: "1"}`, `{V: "2"}`), "b"), Options{})
	wantText(t, "secret changed", p.String(), `
		~ container demo-app-1 (secrets and configs changed)
		~ container demo-sidecar-1 (shares namespaces with recreated demo-app-1)

		Plan: 0 to add, 2 to change, 0 to remove.`)
}
