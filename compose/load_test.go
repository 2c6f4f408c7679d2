package compose

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden want.txt files")

// caseOptions is testdata/<case>/options.json: the LoadOptions of a case,
// with paths relative to the case directory. Absent, a case loads its
// directory with an empty environment.
type caseOptions struct {
	Cwd              string            `json:"cwd"`
	Files            []string          `json:"files"`
	ProjectName      string            `json:"projectName"`
	ProjectDirectory string            `json:"projectDirectory"`
	EnvFiles         []string          `json:"envFiles"`
	Profiles         []string          `json:"profiles"`
	Env              map[string]string `json:"env"`
	Services         []string          `json:"services"`
	NoDeps           bool              `json:"noDeps"`
	Scale            map[string]int    `json:"scale"`
}

func (c caseOptions) load(dir string) LoadOptions {
	env := c.Env
	if env == nil {
		env = map[string]string{}
	}
	return LoadOptions{
		Files: c.Files, ProjectName: c.ProjectName, ProjectDirectory: c.ProjectDirectory,
		EnvFiles: c.EnvFiles, Profiles: c.Profiles, Environment: env,
		WorkingDir: filepath.Join(dir, c.Cwd), Services: c.Services, NoDeps: c.NoDeps,
		Scale: c.Scale, Version: "test",
	}
}

func readCaseOptions(t *testing.T, dir string) caseOptions {
	t.Helper()
	var c caseOptions
	b, err := os.ReadFile(filepath.Join(dir, "options.json"))
	if os.IsNotExist(err) {
		return c
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("options.json: %v", err)
	}
	return c
}

// TestGolden loads each testdata/<case> and compares the rendered Desired,
// or the exact error, with want.txt. Run with -update to refresh.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			got := loadAndRender(t, abs)
			checkGolden(t, filepath.Join(abs, "want.txt"), got)
		})
	}
}

func loadAndRender(t *testing.T, dir string) string {
	d, err := Load(context.Background(), readCaseOptions(t, dir).load(dir))
	if err != nil {
		return "error:\n" + strings.ReplaceAll(err.Error(), dir, "$DIR") + "\n"
	}
	return render(d, dir)
}

func checkGolden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./compose -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run with -update to accept)\n--- want\n%s\n--- got\n%s", file, want, got)
	}
}

// Every problem in the files is an *Error that names the file, the service
// and the key, and matches ErrInvalid, so the CLI can tell bad input from a
// failing host.
func TestErrorsAreLocatedAndInvalid(t *testing.T) {
	dir, err := filepath.Abs("testdata/err-many")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Load(context.Background(), LoadOptions{WorkingDir: dir, Environment: map[string]string{}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error does not match ErrInvalid: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.File != "compose.yaml" || e.Service == "" || e.Key == "" {
		t.Errorf("first error is not located: %#v", e)
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 6 {
		t.Errorf("got %d errors, want the 6 problems of the file reported together:\n%v", n, err)
	}
}

// Load reads the environment it is given, never the process's.
func TestEnvironmentIsInjected(t *testing.T) {
	t.Setenv("TAG", "from-process")
	dir := t.TempDir()
	d := loadDir(t, dir, map[string]string{"compose.yaml": "name: inj\nservices:\n  web:\n    image: nginx:${TAG:-default}\n"}, LoadOptions{})
	if got := d.Services[0].Image; got != "docker.io/library/nginx:default" {
		t.Errorf("image = %s: the process environment leaked into the load", got)
	}
}
