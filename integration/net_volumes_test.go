package integration

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const volumesProject = `
services:
  db:
    image: busybox
    command: ` + loop + `
    environment:
      GENERATION: "1"
    volumes:
      - data:/data
      - keep:/keep
      - scratch:/scratch
      - bound:/bound
      - /anon
      - /var/www
volumes:
  data:
    labels:
      com.example.purpose: data
  keep:
    external: true
    name: KEEP
  scratch:
    driver_opts:
      type: tmpfs
      device: tmpfs
      o: size=1m
  bound:
    driver_opts:
      type: none
      o: bind
      device: BOUND
`

const volumeProvider = `
services:
  maker:
    image: busybox
    command: ` + loop + `
    volumes: [keep:/keep]
volumes:
  keep:
    name: KEEP
`

// volumeDirs lists the volume directories under the state directory.
func volumeDirs(t *testing.T, p *projectEnv) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(p.stateDir, "volumes"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// TestNetVolumes follows a project's volumes through recreate, down and
// down -v: data survives the first two, down -v removes the project's
// volumes (named, driver_opts and anonymous) but never the external one.
func TestNetVolumes(t *testing.T) {
	p := newProjectEnv(t, "")
	keep := p.project + "-keep"
	bound := filepath.Join(p.dir, "bound-dir")
	if err := os.MkdirAll(bound, 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := strings.NewReplacer("KEEP", keep, "BOUND", bound).Replace(volumesProject)
	p.writeCompose(yaml)

	providerDir := filepath.Join(p.dir, "provider")
	if err := os.MkdirAll(providerDir, 0o755); err != nil {
		t.Fatal(err)
	}
	compose := "name: " + p.project + "-prov\n" + strings.ReplaceAll(volumeProvider, "KEEP", keep)
	if err := os.WriteFile(filepath.Join(providerDir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.runIn(providerDir, nil, "down", "-v", "-t", "0") })

	t.Run("external volume must exist", func(t *testing.T) {
		r := p.run("up", "-d")
		if r.code == 0 || !strings.Contains(r.stderr, keep) || !strings.Contains(r.stderr, "external") {
			t.Fatalf("up with a missing external volume: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	if r := p.runIn(providerDir, nil, "up", "-d"); r.code != 0 {
		t.Fatalf("provider up: %s%s", r.stdout, r.stderr)
	}
	p.up()
	db := p.name("db", 1)
	p.sh(db, "echo one > /data/x; echo kept > /keep/y; echo bound > /bound/z; echo anon > /anon/a")

	t.Run("anonymous volume gets the image content", func(t *testing.T) {
		if got := p.sh(db, "ls /var/www"); got != "index.html" {
			t.Errorf("anonymous volume at /var/www holds %q, want the image's index.html", got)
		}
	})
	t.Run("labels and location", func(t *testing.T) {
		for _, v := range p.observe().Volumes {
			if v.Name == p.project+"_data" {
				if v.Labels["com.example.purpose"] != "data" || v.Mountpoint != filepath.Join(p.stateDir, "volumes", v.Name, "_data") {
					t.Errorf("data observed as %+v", v)
				}
				return
			}
		}
		t.Errorf("volume %s_data not observed", p.project)
	})
	t.Run("driver_opts tmpfs and bind", func(t *testing.T) {
		if l := mountLine(p, db, "/scratch"); !strings.HasPrefix(l, "tmpfs ") || !strings.Contains(l, "size=1024k") {
			t.Errorf("/scratch from a tmpfs volume: %q", l)
		}
		if got, err := os.ReadFile(filepath.Join(bound, "z")); err != nil || string(got) != "bound\n" {
			t.Errorf("bind volume's device dir has %q %v", got, err)
		}
	})
	t.Run("data survives recreate", func(t *testing.T) {
		before := p.containerNamed(db).ID
		p.writeCompose(strings.Replace(yaml, `GENERATION: "1"`, `GENERATION: "2"`, 1))
		p.up()
		if p.containerNamed(db).ID == before {
			t.Fatal("changing the environment did not recreate db")
		}
		if got := p.sh(db, "cat /data/x /keep/y /bound/z /anon/a"); got != "one\nkept\nbound\nanon" {
			t.Errorf("after recreate: %q, want named, external, bind and anonymous volumes' data kept", got)
		}
	})
	t.Run("data survives down", func(t *testing.T) {
		p.mustRun("down", "-t", "0")
		if _, err := os.Stat(filepath.Join(p.stateDir, "volumes", p.project+"_data", "_data", "x")); err != nil {
			t.Errorf("down removed volume data: %v", err)
		}
		p.up()
		if got := p.sh(db, "cat /data/x"); got != "one" {
			t.Errorf("after down and up: %q", got)
		}
	})
	t.Run("down -v removes the project's volumes, never the external one", func(t *testing.T) {
		p.mustRun("down", "-v", "-t", "0")
		for _, v := range p.observe().Volumes {
			if v.Project == p.project {
				t.Errorf("volume %s left after down -v", v.Name)
			}
		}
		if got := volumeDirs(t, p); len(got) != 1 || got[0] != keep {
			t.Errorf("volume directories after down -v: %v, want only the external %s", got, keep)
		}
		if got, err := os.ReadFile(filepath.Join(p.stateDir, "volumes", keep, "_data", "y")); err != nil || string(got) != "kept\n" {
			t.Errorf("external volume data: %q %v", got, err)
		}
		if got, err := os.ReadFile(filepath.Join(bound, "z")); err != nil || string(got) != "bound\n" {
			t.Errorf("down -v touched the bind volume's device directory: %q %v", got, err)
		}
	})
}

// TestNetVolumeNamesCannotLeaveTheStateDirectory tries names with path
// separators and dots: each is an error naming the volume, and nothing is
// created.
func TestNetVolumeNamesCannotLeaveTheStateDirectory(t *testing.T) {
	e := newStackEnv(t)
	cleanupNamespace(t, e.namespace)
	p := &projectEnv{stackEnv: e, project: e.namespace}
	for _, name := range []string{"../escape", "a/../../b", ".."} {
		t.Run(name, func(t *testing.T) {
			p.writeCompose(`
services:
  app:
    image: busybox
    command: ` + loop + `
    volumes: [evil:/evil]
volumes:
  evil:
    name: "` + name + `"
`)
			r := p.run("up", "-d")
			if r.code != 1 || !strings.Contains(r.stderr, name) {
				t.Errorf("up with volume name %q: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
			}
			if got := volumeDirs(t, p); len(got) != 0 {
				t.Errorf("volumes created: %v", got)
			}
			if _, err := os.Stat(filepath.Join(p.stateDir, "escape")); err == nil {
				t.Error("a directory escaped the volumes directory")
			}
			if st := p.observe(); len(st.Containers)+len(st.Networks) != 0 {
				t.Errorf("created: containers %v, networks %v", fingerprint(st), st.Networks)
			}
		})
	}
}
