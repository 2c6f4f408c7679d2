package ctrd

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNormalizeRefCompletesShortNamesLikeDocker(t *testing.T) {
	cases := map[string]string{
		"busybox":                      "docker.io/library/busybox:latest",
		"busybox:1.36":                 "docker.io/library/busybox:1.36",
		"team/app":                     "docker.io/team/app:latest",
		"localhost:5000/app":           "localhost:5000/app:latest",
		"127.0.0.1:5000/a/b:v1":        "127.0.0.1:5000/a/b:v1",
		"ghcr.io/o/r@sha256:" + hex64:  "ghcr.io/o/r@sha256:" + hex64,
		"docker.io/library/hello:test": "docker.io/library/hello:test",
	}
	for in, want := range cases {
		if got, err := NormalizeRef(in); err != nil || got != want {
			t.Errorf("NormalizeRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := NormalizeRef("no spaces/allowed here"); err == nil || !strings.Contains(err.Error(), `invalid image reference "no spaces/allowed here"`) {
		t.Errorf("an invalid reference gave %v", err)
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestFamiliarRefIsWhatDockerPrints(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/busybox:latest": "busybox:latest",
		"docker.io/team/app:1":             "team/app:1",
		"127.0.0.1:5000/a:1":               "127.0.0.1:5000/a:1",
		"sha256:" + hex64:                  "sha256:" + hex64,
	} {
		if got := FamiliarRef(in); got != want {
			t.Errorf("FamiliarRef(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPlainHTTPForLoopbackAndTheInsecureList(t *testing.T) {
	cfg := RegistryConfig{Insecure: []string{"registry.lan:5000", "http://mirror.lan/", "10.0.0.9"}}
	for host, want := range map[string]bool{
		"localhost:5000":    true,
		"127.0.0.1:5000":    true,
		"[::1]:5000":        true,
		"registry.lan:5000": true,
		"registry.lan:5001": false,
		"mirror.lan":        true,
		"10.0.0.9:443":      true,
		"docker.io":         false,
		"ghcr.io":           false,
	} {
		if got, err := cfg.isInsecure(host); err != nil || got != want {
			t.Errorf("isInsecure(%q) = %v, %v; want %v", host, got, err, want)
		}
	}
}

func TestRegistryConfigFromEnv(t *testing.T) {
	t.Setenv(EnvInsecureRegistries, " a:5000, ,b ")
	t.Setenv(EnvRegistryTimeout, "2s")
	cfg, err := RegistryConfigFromEnv()
	if err != nil || strings.Join(cfg.Insecure, "|") != "a:5000|b" || cfg.Timeout != 2*time.Second {
		t.Fatalf("got %+v, %v", cfg, err)
	}
	t.Setenv(EnvRegistryTimeout, "-1s")
	if _, err := RegistryConfigFromEnv(); err == nil || !strings.Contains(err.Error(), `STACK_REGISTRY_TIMEOUT="-1s" is not a positive duration`) {
		t.Fatalf("a negative timeout gave %v", err)
	}
	t.Setenv(EnvRegistryTimeout, "")
	if cfg, _ := RegistryConfigFromEnv(); cfg.Timeout != DefaultRegistryTimeout {
		t.Fatalf("default timeout %s", cfg.Timeout)
	}
}

func TestCredentialsFromDockerConfigJSON(t *testing.T) {
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("alice:pa:ss"))
	writeConfig(t, dir, `{"auths": {
		"https://index.docker.io/v1/": {"auth": "`+auth+`"},
		"registry.lan:5000": {"username": "bob", "password": "pw"},
		"http://token.lan/v2/": {"identitytoken": "refresh-me"},
		"broken.lan": {"auth": "%%%"}
	}}`)
	creds, err := loadDockerCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string][2]string{
		"registry-1.docker.io": {"alice", "pa:ss"},
		"registry.lan:5000":    {"bob", "pw"},
		"token.lan":            {"", "refresh-me"},
		"other.lan":            {"", ""},
	} {
		user, secret, err := creds.lookup(host)
		if err != nil || user != want[0] || secret != want[1] {
			t.Errorf("lookup(%q) = %q, %q, %v; want %q", host, user, secret, err, want)
		}
	}
	if _, _, err := creds.lookup("broken.lan"); err == nil || !strings.Contains(err.Error(), "credentials for broken.lan in docker config.json: auth is not base64") {
		t.Errorf("bad base64 gave %v", err)
	}
}

func TestCredentialsHonourDockerConfigAndToleratesNoFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	if creds, err := loadDockerCredentials(""); err != nil || len(creds) != 0 {
		t.Fatalf("no config.json: %v, %v", creds, err)
	}
	writeConfig(t, dir, `{"auths": {"r.lan": {"username": "u", "password": "p"}}}`)
	creds, err := loadDockerCredentials("")
	if user, _, _ := creds.lookup("r.lan"); err != nil || user != "u" {
		t.Fatalf("DOCKER_CONFIG not read: %v, %v", creds, err)
	}
	writeConfig(t, dir, `{"auths": `)
	if _, err := loadDockerCredentials(""); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) {
		t.Fatalf("malformed config.json gave %v", err)
	}
}

func writeConfig(t *testing.T, dir, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
