package compose

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// loadDir writes files into a fresh directory and loads it.
func loadDir(t *testing.T, dir string, files map[string]string, opts LoadOptions) Desired {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts.WorkingDir = dir
	if opts.Environment == nil {
		opts.Environment = map[string]string{}
	}
	d, err := Load(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func hashOf(t *testing.T, d Desired, service string) string {
	t.Helper()
	for _, c := range d.Containers {
		if c.Service == service {
			return c.ConfigHash
		}
	}
	t.Fatalf("no container for service %s", service)
	return ""
}

const hashBase = `
name: h
services:
  web:
    image: nginx
    command: ["nginx", "-g", "daemon off;"]
    environment:
      MODE: prod
`

// The hash of a service that reads no file is pinned: if this changes,
// every running container would look changed after an upgrade, so the
// change must come with a new HashVersion.
func TestHashIsPinned(t *testing.T) {
	d := loadDir(t, t.TempDir(), map[string]string{"compose.yaml": hashBase}, LoadOptions{})
	const want = "48b9fab0f0183f4a3b120c7d3a24463c7397fd09d5375aca6138f0d0a17a911e"
	if got := hashOf(t, d, "web"); got != want {
		t.Errorf("hash of web = %s, want %s (a changed algorithm needs a new HashVersion)", got, want)
	}
	if v := d.Containers[0].Labels["dev.stack.hash-version"]; v != HashVersion {
		t.Errorf("hash-version label = %q, want %q", v, HashVersion)
	}
}

func TestHashSameInputSameHash(t *testing.T) {
	dir := t.TempDir()
	a := loadDir(t, dir, map[string]string{"compose.yaml": hashBase}, LoadOptions{})
	b := loadDir(t, dir, map[string]string{"compose.yaml": hashBase}, LoadOptions{})
	if hashOf(t, a, "web") != hashOf(t, b, "web") {
		t.Error("loading the same files twice gave two hashes")
	}
}

// Replicas, depends_on, profiles and pull_policy do not change what a
// container runs, so they do not change its hash.
func TestHashIgnoresReplicasAndOrdering(t *testing.T) {
	dir := t.TempDir()
	base := hashOf(t, loadDir(t, dir, map[string]string{"compose.yaml": hashBase}, LoadOptions{}), "web")
	changed := hashBase + `    scale: 3
    pull_policy: always
    profiles: [web]
    depends_on: [db]
  db:
    image: postgres
`
	d := loadDir(t, dir, map[string]string{"compose.yaml": changed}, LoadOptions{Profiles: []string{"web"}})
	if got := hashOf(t, d, "web"); got != base {
		t.Errorf("scale/pull_policy/profiles/depends_on changed the hash: %s != %s", got, base)
	}
	d = loadDir(t, dir, map[string]string{"compose.yaml": hashBase}, LoadOptions{Scale: map[string]int{"web": 5}})
	if got := hashOf(t, d, "web"); got != base {
		t.Errorf("--scale changed the hash: %s != %s", got, base)
	}
	for _, c := range d.Containers {
		if c.ConfigHash != base {
			t.Errorf("replica %s has hash %s, want %s", c.Name, c.ConfigHash, base)
		}
	}
}

func TestHashFollowsEnvironment(t *testing.T) {
	dir := t.TempDir()
	base := hashOf(t, loadDir(t, dir, map[string]string{"compose.yaml": hashBase}, LoadOptions{}), "web")
	other := loadDir(t, dir, map[string]string{"compose.yaml": hashBase + "      EXTRA: x\n"}, LoadOptions{})
	if hashOf(t, other, "web") == base {
		t.Error("adding an environment variable kept the hash")
	}
}

const hashFiles = `
name: h
services:
  web:
    image: nginx
    env_file: [web.env]
    secrets: [pw]
    configs: [conf]
  other:
    image: busybox
secrets:
  pw:
    file: ./pw.txt
configs:
  conf:
    content: "${CONF}"
`

// A changed secret, config or env file recreates the containers that read
// it, and only those.
func TestHashFollowsFileContent(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"compose.yaml": hashFiles, "pw.txt": "one", "web.env": "A=1\n"}
	env := map[string]string{"CONF": "c1"}
	base := loadDir(t, dir, files, LoadOptions{Environment: env})
	for name, change := range map[string]func(){
		"secret file": func() { files["pw.txt"] = "two" },
		"config":      func() { env["CONF"] = "c2" },
		"env file":    func() { files["web.env"] = "A=1\n# comment\n" },
	} {
		t.Run(name, func(t *testing.T) {
			saved, savedEnv := copyFiles(files), env["CONF"]
			defer func() { files, env["CONF"] = saved, savedEnv }()
			change()
			d := loadDir(t, dir, files, LoadOptions{Environment: env})
			if hashOf(t, d, "web") == hashOf(t, base, "web") {
				t.Errorf("changing the %s kept web's hash", name)
			}
			if hashOf(t, d, "other") != hashOf(t, base, "other") {
				t.Errorf("changing the %s changed the hash of other, which does not read it", name)
			}
		})
	}
}

func copyFiles(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestNetworkAndVolumeHashesAreStable(t *testing.T) {
	src := `
name: h
services:
  web:
    image: nginx
    networks: [front]
    volumes: [data:/data]
networks:
  front:
    internal: true
volumes:
  data: {}
`
	dir := t.TempDir()
	a := loadDir(t, dir, map[string]string{"compose.yaml": src}, LoadOptions{})
	b := loadDir(t, dir, map[string]string{"compose.yaml": src}, LoadOptions{})
	if a.Networks[0].ConfigHash == "" || a.Networks[0].ConfigHash != b.Networks[0].ConfigHash {
		t.Errorf("network hash unstable: %q vs %q", a.Networks[0].ConfigHash, b.Networks[0].ConfigHash)
	}
	if a.Volumes[0].ConfigHash == "" || a.Volumes[0].ConfigHash != b.Volumes[0].ConfigHash {
		t.Errorf("volume hash unstable: %q vs %q", a.Volumes[0].ConfigHash, b.Volumes[0].ConfigHash)
	}
	c := loadDir(t, dir, map[string]string{"compose.yaml": src[:len(src)-len("volumes:\n  data: {}\n")] + "volumes:\n  data:\n    labels: {a: b}\n"}, LoadOptions{})
	if c.Volumes[0].ConfigHash == a.Volumes[0].ConfigHash {
		t.Error("changing a volume's labels kept its hash")
	}
}
