package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fileKeys = `
services:
  app:
    image: busybox
    command: ` + loop + `
    user: "1000:1000"
    secrets:
      - db_pass
      - source: token
        target: api_token
        uid: "1000"
        gid: "1000"
        mode: 0400
    configs:
      - source: app_conf
        target: /etc/app/app.conf
        uid: "0"
        gid: "1000"
        mode: 0640
      - inline
secrets:
  db_pass:
    file: ./db_pass.txt
  token:
    environment: TOKEN
configs:
  app_conf:
    file: ./app.conf
  inline:
    content: inline content
`

// TestKeySecretsAndConfigs reads each secret and config inside the
// container, as its non-root user: file, environment and content sources,
// the default and given targets, uid, gid and mode, mounted read-only; and
// a changed secret changes the container.
func TestKeySecretsAndConfigs(t *testing.T) {
	p := newProjectEnv(t, fileKeys)
	for name, content := range map[string]string{"db_pass.txt": "s3cret\n", "app.conf": "level=debug\n", ".env": "TOKEN=from-env\n"} {
		if err := os.WriteFile(filepath.Join(p.dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p.up()
	app := p.name("app", 1)

	for _, tc := range []struct {
		source, path, content, stat string
	}{
		{"secret from a file, default target", "/run/secrets/db_pass", "s3cret", "444 0 0"},
		{"secret from the environment, owner and mode", "/run/secrets/api_token", "from-env", "400 1000 1000"},
		{"config from a file, owner and mode", "/etc/app/app.conf", "level=debug", "640 0 1000"},
		{"config from content, default target", "/inline", "inline content", "444 0 0"},
	} {
		t.Run(tc.source, func(t *testing.T) {
			if got := p.sh(app, "cat "+tc.path); got != tc.content {
				t.Errorf("%s = %q, want %q", tc.path, got, tc.content)
			}
			if got := p.sh(app, "stat -L -c '%a %u %g' "+tc.path); got != tc.stat {
				t.Errorf("%s mode uid gid = %q, want %q", tc.path, got, tc.stat)
			}
			if l := mountLine(p, app, tc.path); !strings.Contains(l, " ro,") {
				t.Errorf("%s is not mounted read-only: %s", tc.path, l)
			}
		})
	}
	t.Run("changed secret changes the container", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(p.dir, "db_pass.txt"), []byte("rotated\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := p.run("plan", "--detailed-exitcode"); r.code != 2 || !strings.Contains(r.stdout, "~ container "+app) {
			t.Fatalf("plan after a secret change: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		p.up()
		if got := p.sh(app, "cat /run/secrets/db_pass"); got != "rotated" {
			t.Errorf("after up, the secret reads %q, want rotated", got)
		}
	})
}
