package compose

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// ProjectName follows compose's precedence: -p, COMPOSE_PROJECT_NAME (also
// from .env), the last name: of the files, the project directory.
func TestProjectNamePrecedence(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		opts  LoadOptions
		want  string
	}{
		{"flag wins", map[string]string{"compose.yaml": "name: fromfile\nservices: {}\n"}, LoadOptions{ProjectName: "fromflag"}, "fromflag"},
		{"environment", map[string]string{"compose.yaml": "name: fromfile\nservices: {}\n"}, LoadOptions{Environment: map[string]string{"COMPOSE_PROJECT_NAME": "fromenv"}}, "fromenv"},
		{"dotenv", map[string]string{"compose.yaml": "name: fromfile\nservices: {}\n", ".env": "COMPOSE_PROJECT_NAME=fromdotenv\n"}, LoadOptions{}, "fromdotenv"},
		{"name key", map[string]string{"compose.yaml": "name: fromfile\nservices: {}\n"}, LoadOptions{}, "fromfile"},
		{"override file's name wins", map[string]string{"compose.yaml": "name: base\nservices: {}\n", "compose.override.yaml": "name: over\n"}, LoadOptions{}, "over"},
		{"interpolated name", map[string]string{"compose.yaml": "name: ${APP:-interp}\nservices: {}\n"}, LoadOptions{}, "interp"},
		{"directory", map[string]string{"compose.yaml": "services: {}\n"}, LoadOptions{}, "my_dir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "My_Dir")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFiles(t, dir, tc.files)
			tc.opts.WorkingDir = dir
			got, err := ProjectName(context.Background(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("project name = %q, want %q", got, tc.want)
			}
			if tc.opts.ProjectName == "" && tc.opts.Environment == nil {
				d, err := Load(context.Background(), tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				if d.Project != got {
					t.Errorf("ProjectName %q differs from a full load's %q", got, d.Project)
				}
			}
		})
	}
}
