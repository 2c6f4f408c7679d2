package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackdev/stack/engine"
)

const configProject = `
name: cfg
services:
  web:
    image: nginx
    depends_on: [api]
    networks: [front]
  api:
    image: busybox
    volumes: [data:/data]
  debug:
    image: busybox
    profiles: [debug]
networks:
  front: {}
volumes:
  data: {}
`

// inProject writes compose.yaml into a fresh directory and makes it the
// current directory, with no COMPOSE_* variable leaking in.
func inProject(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_ENV_FILES"} {
		t.Setenv(k, "")
	}
	t.Chdir(dir)
	return dir
}

func runStack(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(strings.NewReader(""), &out, &errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestConfigLists(t *testing.T) {
	inProject(t, configProject)
	for _, tc := range []struct {
		flag, want string
	}{
		{"--services", "api\nweb\n"},
		{"--volumes", "data\n"},
		{"--networks", "default\nfront\n"},
		{"--images", "busybox\nnginx\n"},
		{"--profiles", "debug\n"},
	} {
		got, err := runStack(t, "config", tc.flag)
		if err != nil {
			t.Fatalf("config %s: %v", tc.flag, err)
		}
		if got != tc.want {
			t.Errorf("config %s = %q, want %q", tc.flag, got, tc.want)
		}
	}
}

func TestConfigProfileEnablesService(t *testing.T) {
	inProject(t, configProject)
	got, err := runStack(t, "--profile", "debug", "config", "--services")
	if err != nil {
		t.Fatal(err)
	}
	if got != "api\ndebug\nweb\n" {
		t.Errorf("services with --profile debug = %q", got)
	}
}

func TestConfigJSONAndOutputFile(t *testing.T) {
	dir := inProject(t, configProject)
	out := filepath.Join(dir, "out.json")
	if stdout, err := runStack(t, "config", "--format", "json", "-o", out); err != nil || stdout != "" {
		t.Fatalf("config -o: stdout %q, err %v", stdout, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var model struct {
		Name     string                    `json:"name"`
		Services map[string]map[string]any `json:"services"`
	}
	if err := json.Unmarshal(b, &model); err != nil {
		t.Fatalf("config --format json is not JSON: %v\n%s", err, b)
	}
	if model.Name != "cfg" || model.Services["web"]["image"] != "nginx" {
		t.Errorf("unexpected model: %+v", model)
	}
	yamlOut, err := runStack(t, "config")
	if err != nil || !strings.Contains(yamlOut, "name: cfg\n") || !strings.Contains(yamlOut, "image: nginx") {
		t.Errorf("config yaml: err %v\n%s", err, yamlOut)
	}
}

// config --hash prints the hash the containers are labelled with, so a user
// can tell which service a change will recreate.
func TestConfigHashMatchesContainerLabel(t *testing.T) {
	inProject(t, configProject)
	got, err := runStack(t, "config", "--hash", "*")
	if err != nil {
		t.Fatal(err)
	}
	a := &app{}
	d, err := a.loadProject(context.Background(), nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, s := range []string{"api", "web"} {
		for _, c := range d.Containers {
			if c.Service == s {
				want.WriteString(s + " " + c.Labels[engine.LabelConfigHash] + "\n")
			}
		}
	}
	if got != want.String() {
		t.Errorf("config --hash '*' =\n%s\nwant (from the container labels)\n%s", got, want.String())
	}
	one, err := runStack(t, "config", "--hash", "web")
	if err != nil || !strings.HasPrefix(got, "api ") || !strings.Contains(got, one) {
		t.Errorf("config --hash web = %q (err %v), not a line of %q", one, err, got)
	}
}

func TestConfigQuietReportsEveryError(t *testing.T) {
	inProject(t, `
services:
  web:
    image: nginx
    build: .
    ports: ["8080:80"]
  api:
    image: nginx
    ports: ["8080:80"]
`)
	out, err := runStack(t, "config", "-q")
	if err == nil {
		t.Fatal("config -q accepted an invalid file")
	}
	if out != "" {
		t.Errorf("config -q printed %q", out)
	}
	for _, want := range []string{
		`compose.yaml: service "web": build: not supported by stack yet`,
		`compose.yaml: service "web": ports: host port 8080/tcp is already published by service "api"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestProjectNameWithoutComposeFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My.Project")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COMPOSE_PROJECT_NAME", "")
	t.Setenv("COMPOSE_FILE", "")
	t.Chdir(dir)
	a := &app{}
	name, err := a.projectName(context.Background())
	if err != nil || name != "myproject" {
		t.Errorf("projectName = %q, %v; want myproject from the directory", name, err)
	}
	a.opts.projectName = "explicit"
	if name, _ := a.projectName(context.Background()); name != "explicit" {
		t.Errorf("projectName with -p = %q", name)
	}
}
