package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// loop is a PID 1 that exits on SIGTERM, so stopping it is quick.
const loop = `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`

const processKeys = `
services:
  web:
    image: hello
    environment:
      PORT: "8081"
  proc:
    image: busybox
    entrypoint: ["sh", "-c"]
    command: ["trap 'exit 0' TERM; while true; do sleep 1; done", "argzero"]
    environment:
      FROM_ENVIRONMENT: env-value
      BOTH: environment-wins
    env_file: [app.env]
    working_dir: /srv/app
    user: "1000:1000"
    group_add: ["65534", "42"]
    hostname: box
    domainname: example.test
    labels:
      com.example.role: processor
    annotations:
      com.example.note: annotated
    restart: on-failure:3
    healthcheck:
      test: ["CMD", "true"]
      interval: 7s
      retries: 4
    logging:
      driver: json-file
      options:
        max-size: 1m
  named:
    image: busybox
    container_name: CUSTOM
    command: ` + loop + `
  term:
    image: busybox
    command: ["sh"]
    tty: true
    stdin_open: true
  byname:
    image: busybox
    command: ` + loop + `
    user: user
    group_add: [nobody]
  inited:
    image: busybox
    command: ["sleep", "3600"]
    init: true
`

// TestKeyProcess covers what runs and as whom: image, command, entrypoint,
// environment, env_file, working_dir, user, group_add, hostname,
// domainname, container_name, labels, annotations, tty, stdin_open, init, and the
// lifecycle keys stored for the daemon (restart, healthcheck, logging).
func TestKeyProcess(t *testing.T) {
	p := newProjectEnv(t, "")
	custom := p.project + "-custom"
	p.writeCompose(strings.Replace(processKeys, "CUSTOM", custom, 1))
	if err := os.WriteFile(filepath.Join(p.dir, "app.env"), []byte("FROM_FILE=file-value\nBOTH=file-loses\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.up()
	proc := p.name("proc", 1)

	t.Run("image", func(t *testing.T) {
		if got := p.sh(p.name("web", 1), "cat /proc/1/cmdline"); got != "/hello\x00" {
			t.Errorf("web runs %q, want the hello image's /hello", got)
		}
		if got := p.sh(proc, "ls /hello 2>&1 || true"); !strings.Contains(got, "No such file") {
			t.Errorf("busybox service has the hello binary: %q", got)
		}
	})
	t.Run("entrypoint and command", func(t *testing.T) {
		got := strings.Split(strings.TrimRight(p.proc(proc, "cmdline"), "\x00"), "\x00")
		want := []string{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done", "argzero"}
		if !slices.Equal(got, want) {
			t.Errorf("PID 1 argv = %q, want entrypoint then command %q", got, want)
		}
	})
	t.Run("environment and env_file", func(t *testing.T) {
		env := p.sh(proc, "cat /proc/1/environ | tr '\\0' '\\n'")
		for _, want := range []string{"FROM_ENVIRONMENT=env-value", "FROM_FILE=file-value", "BOTH=environment-wins", "HOSTNAME=box"} {
			if !slices.Contains(trimmedLines(env), want) {
				t.Errorf("environment lacks %s:\n%s", want, env)
			}
		}
		if body, err := fetchFromContainer(p, p.name("web", 1), 8081); err != nil || !strings.Contains(body, "PORT=8081") {
			t.Errorf("hello did not listen on $PORT=8081: %v %q", err, body)
		}
	})
	t.Run("working_dir", func(t *testing.T) {
		if got := p.sh(proc, "pwd"); got != "/srv/app" {
			t.Errorf("pwd = %q", got)
		}
		if got := strings.TrimSpace(mustReadlink(t, "/proc/"+itoa(p.containerNamed(proc).Pid)+"/cwd")); !strings.HasSuffix(got, "/srv/app") {
			t.Errorf("PID 1 cwd = %q", got)
		}
	})
	t.Run("user and group_add", func(t *testing.T) {
		if got := p.sh(proc, "id -u; id -g"); got != "1000\n1000" {
			t.Errorf("id -u; id -g = %q, want 1000 1000", got)
		}
		groups := strings.Fields(p.statusField(proc, "Groups"))
		for _, g := range []string{"42", "65534"} {
			if !slices.Contains(groups, g) {
				t.Errorf("PID 1 supplementary groups %v lack %s", groups, g)
			}
		}
		uid := strings.Fields(p.statusField(proc, "Uid"))
		if len(uid) == 0 || uid[0] != "1000" {
			t.Errorf("PID 1 Uid %v", uid)
		}
	})
	t.Run("user and group_add by name", func(t *testing.T) {
		byname := p.name("byname", 1)
		if got := p.sh(byname, "id -u; id -g"); got != "1000\n1000" {
			t.Errorf("user: user gives %q, want the image's uid and gid 1000", got)
		}
		if groups := strings.Fields(p.statusField(byname, "Groups")); !slices.Contains(groups, "65534") {
			t.Errorf("group_add nobody: supplementary groups %v lack 65534", groups)
		}
	})
	t.Run("hostname and domainname", func(t *testing.T) {
		if got := p.sh(proc, "hostname; cat /proc/sys/kernel/domainname /etc/hostname"); got != "box\nexample.test\nbox" {
			t.Errorf("hostname; domainname = %q", got)
		}
		if hosts := p.sh(proc, "cat /etc/hosts"); !strings.Contains(hosts, "box.example.test") {
			t.Errorf("/etc/hosts lacks box.example.test:\n%s", hosts)
		}
		if got := p.sh(p.name("web", 1), "hostname"); len(got) != 12 {
			t.Errorf("default hostname %q, want the 12-character container ID", got)
		}
	})
	t.Run("container_name", func(t *testing.T) {
		c := p.containerNamed(custom)
		if c.Service != "named" || c.Status != "running" {
			t.Errorf("container %s: service %q status %s", custom, c.Service, c.Status)
		}
		if ps := p.mustRun("ps"); !strings.Contains(ps, custom) {
			t.Errorf("ps lacks %s:\n%s", custom, ps)
		}
	})
	t.Run("labels", func(t *testing.T) {
		labels := psLabels(t, p, "proc")
		if labels["com.example.role"] != "processor" || labels["com.docker.compose.service"] != "proc" {
			t.Errorf("ps --format json Labels = %v", labels)
		}
	})
	t.Run("annotations", func(t *testing.T) {
		if got := p.ociSpec(proc).Annotations["com.example.note"]; got != "annotated" {
			t.Errorf("OCI annotation com.example.note = %q", got)
		}
	})
	t.Run("tty and stdin_open", func(t *testing.T) {
		term := p.name("term", 1)
		// sh on a terminal waits for input: it is still running.
		if c := p.containerNamed(term); c.Status != "running" {
			t.Fatalf("sh with tty and stdin_open is %s, want running", c.Status)
		}
		if !p.ociSpec(term).Process.Terminal {
			t.Error("OCI spec has no terminal")
		}
		if fd0 := mustReadlink(t, "/proc/"+itoa(p.containerNamed(term).Pid)+"/fd/0"); !strings.HasPrefix(fd0, "/dev/pts/") {
			t.Errorf("PID 1 stdin is %q, want a terminal", fd0)
		}
		if s := p.stored(term).Process; !s.TTY || !s.StdinOpen {
			t.Errorf("stored process tty=%v stdin_open=%v", s.TTY, s.StdinOpen)
		}
	})
	t.Run("init", func(t *testing.T) {
		inited := p.name("inited", 1)
		argv := strings.Split(strings.TrimRight(p.proc(inited, "cmdline"), "\x00"), "\x00")
		if !slices.Equal(argv, []string{"/sbin/docker-init", "--", "sleep", "3600"}) {
			t.Errorf("PID 1 argv = %q, want the init running the command", argv)
		}
		if got := p.sh(inited, "cat /proc/1/comm; ps -o pid,comm | grep -c sleep"); !strings.HasPrefix(got, "tini") && !strings.HasPrefix(got, "docker-init") {
			t.Errorf("PID 1 inside: %q", got)
		}
	})
	t.Run("restart healthcheck logging stored", func(t *testing.T) {
		s := p.stored(proc)
		if s.Restart.Name != "on-failure" || s.Restart.MaxAttempts != 3 {
			t.Errorf("stored restart = %+v", s.Restart)
		}
		if s.Health == nil || !slices.Equal(s.Health.Test, []string{"CMD", "true"}) || s.Health.Interval != 7*time.Second || s.Health.Retries != 4 {
			t.Errorf("stored healthcheck = %+v", s.Health)
		}
		if s.Logging.Driver != "json-file" || s.Logging.Options["max-size"] != "1m" {
			t.Errorf("stored logging = %+v", s.Logging)
		}
	})
}

// psLabels is the Labels field of `stack ps --format json` for a service.
func psLabels(t *testing.T, p *projectEnv, service string) map[string]string {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(p.mustRun("ps", "--format", "json")), "\n") {
		var row struct{ Service, Labels string }
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("ps --format json line %q: %v", line, err)
		}
		if row.Service != service {
			continue
		}
		out := map[string]string{}
		for _, kv := range strings.Split(row.Labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
		return out
	}
	t.Fatalf("ps lists no container of %s", service)
	return nil
}

func TestKeyUnsupportedIsAnErrorNamingFileServiceAndKey(t *testing.T) {
	for _, tc := range []struct{ key, yaml string }{
		{"build", "    build: .\n"},
		{"develop", "    develop:\n      watch:\n        - action: sync\n          path: ./src\n          target: /src\n"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			e := newStackEnv(t)
			compose := "name: unsup\nservices:\n  app:\n    image: busybox\n" + tc.yaml
			if err := os.WriteFile(filepath.Join(e.dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
				t.Fatal(err)
			}
			r := e.run("up", "-d")
			if r.code != 1 {
				t.Fatalf("up with %s: exit %d, want 1\n%s%s", tc.key, r.code, r.stdout, r.stderr)
			}
			for _, want := range []string{"compose.yaml", "app", tc.key} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("error lacks %q:\n%s", want, r.stderr)
				}
			}
		})
	}
}
