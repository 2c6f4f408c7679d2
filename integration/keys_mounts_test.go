package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const mountKeys = `
services:
  store:
    image: busybox
    command: ` + loop + `
    volumes:
      - data:/data
      - www:/var/www
      - ./short:/short
      - type: bind
        source: ./made
        target: /made
        bind:
          create_host_path: true
          propagation: rshared
      - type: bind
        source: ./ro
        target: /ro
        read_only: true
      - type: tmpfs
        target: /scratch
        tmpfs:
          size: 1m
          mode: 01770
    tmpfs:
      - /run/tmp:size=2m,mode=1777
  nocopy:
    image: busybox
    command: ` + loop + `
    volumes:
      - type: volume
        source: bare
        target: /var/www
        volume:
          nocopy: true
      - data:/ro-data:ro
  reader:
    image: busybox
    command: ` + loop + `
    volumes_from: ["store:ro"]
volumes:
  data: {}
  www: {}
  bare: {}
`

// mountLine is the /proc/mounts line of the container's mount at target.
func mountLine(p *projectEnv, name, target string) string {
	p.t.Helper()
	for _, l := range strings.Split(p.sh(name, "cat /proc/mounts"), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == target {
			return l
		}
	}
	p.t.Fatalf("%s has no mount at %s", name, target)
	return ""
}

// mountInfo is the /proc/<pid>/mountinfo line of the mount at target.
func mountInfo(p *projectEnv, name, target string) string {
	p.t.Helper()
	for _, l := range strings.Split(p.proc(name, "mountinfo"), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == target {
			return l
		}
	}
	p.t.Fatalf("%s has no mount at %s in mountinfo", name, target)
	return ""
}

// TestKeyMounts looks at each mount from inside the container and from the
// host: named volumes (with the image's content copied in, or not with
// volume.nocopy), binds (short syntax, create_host_path, read_only,
// propagation), tmpfs (long syntax and the tmpfs key) and volumes_from.
func TestKeyMounts(t *testing.T) {
	p := newProjectEnv(t, mountKeys)
	if err := os.MkdirAll(filepath.Join(p.dir, "ro"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "ro", "given"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.up()
	store, reader := p.name("store", 1), p.name("reader", 1)
	volData := func(vol, file string) string {
		return filepath.Join(p.stateDir, "volumes", p.project+"_"+vol, "_data", file)
	}

	t.Run("named volume", func(t *testing.T) {
		p.sh(store, "echo kept > /data/note")
		if got, err := os.ReadFile(volData("data", "note")); err != nil || string(got) != "kept\n" {
			t.Errorf("volume data on the host: %q %v", got, err)
		}
	})
	t.Run("named volume gets the image content", func(t *testing.T) {
		if got := p.sh(store, "ls /var/www"); got != "index.html" {
			t.Errorf("/var/www in a fresh volume = %q, want the image's index.html", got)
		}
		if _, err := os.Stat(volData("www", "index.html")); err != nil {
			t.Errorf("copied content not in the volume: %v", err)
		}
	})
	t.Run("volume nocopy", func(t *testing.T) {
		if got := p.sh(p.name("nocopy", 1), "ls -A /var/www"); got != "" {
			t.Errorf("/var/www with nocopy = %q, want empty", got)
		}
	})
	t.Run("named volume read-only", func(t *testing.T) {
		nocopy := p.name("nocopy", 1)
		if got := p.sh(nocopy, "cat /ro-data/note"); got != "kept" {
			t.Errorf("/ro-data/note = %q, want the store's write", got)
		}
		if r := p.exec(nocopy, "touch", "/ro-data/new"); r.code == 0 || !strings.Contains(r.stderr, "Read-only") {
			t.Errorf("write to data:/ro-data:ro: exit %d %q", r.code, r.stderr)
		}
	})
	t.Run("bind short syntax creates the host path", func(t *testing.T) {
		p.sh(store, "echo in > /short/f")
		if got, err := os.ReadFile(filepath.Join(p.dir, "short", "f")); err != nil || string(got) != "in\n" {
			t.Errorf("./short/f on the host: %q %v", got, err)
		}
	})
	t.Run("bind create_host_path and propagation", func(t *testing.T) {
		if fi, err := os.Stat(filepath.Join(p.dir, "made")); err != nil || !fi.IsDir() {
			t.Fatalf("./made was not created: %v", err)
		}
		info := mountInfo(p, store, "/made")
		if !strings.Contains(info, "shared:") {
			t.Errorf("/made mountinfo %q: want a shared mount (rshared)", info)
		}
		if info := mountInfo(p, store, "/short"); strings.Contains(info, "shared:") {
			t.Errorf("/short mountinfo %q: want private, the default", info)
		}
	})
	t.Run("bind read_only", func(t *testing.T) {
		if got := p.sh(store, "cat /ro/given"); got != "from-host" {
			t.Errorf("/ro/given = %q", got)
		}
		if r := p.exec(store, "touch", "/ro/new"); r.code == 0 || !strings.Contains(r.stderr, "Read-only") {
			t.Errorf("write to read-only bind: exit %d %q", r.code, r.stderr)
		}
		if l := mountLine(p, store, "/ro"); !strings.Contains(l, " ro,") {
			t.Errorf("/ro mount %q is not ro", l)
		}
	})
	t.Run("tmpfs long syntax", func(t *testing.T) {
		l := mountLine(p, store, "/scratch")
		if !strings.HasPrefix(l, "tmpfs ") || !strings.Contains(l, "size=1024k") || !strings.Contains(l, "mode=1770") {
			t.Errorf("/scratch: %q, want tmpfs size=1024k mode=1770", l)
		}
	})
	t.Run("tmpfs key", func(t *testing.T) {
		l := mountLine(p, store, "/run/tmp")
		if !strings.HasPrefix(l, "tmpfs ") || !strings.Contains(l, "size=2048k") {
			t.Errorf("/run/tmp: %q, want tmpfs size=2048k", l)
		}
		if mode := p.sh(store, "stat -c %a /run/tmp /scratch"); mode != "1777\n1770" {
			t.Errorf("tmpfs modes %q, want 1777 and 1770", mode)
		}
	})
	t.Run("volumes_from read-only", func(t *testing.T) {
		if got := p.sh(reader, "cat /data/note; cat /short/f"); got != "kept\nin" {
			t.Errorf("reader sees %q, want the store's volume and bind", got)
		}
		if r := p.exec(reader, "sh", "-c", "echo x > /data/other"); r.code == 0 {
			t.Error("volumes_from store:ro is writable")
		}
		if l := mountLine(p, reader, "/var/www"); !strings.Contains(l, " ro,") {
			t.Errorf("reader /var/www %q is not ro", l)
		}
	})
}
