package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A doctor pointed at a plugin directory that lacks portmap names portmap,
// says how to fix it, and exits 1.
func TestDoctorNamesMissingCNIPlugin(t *testing.T) {
	e := newStackEnv(t)
	dir := t.TempDir()
	for _, plugin := range []string{"bridge", "host-local", "loopback", "firewall"} {
		if err := os.Symlink(filepath.Join("/usr/lib/cni", plugin), filepath.Join(dir, plugin)); err != nil {
			t.Fatal(err)
		}
	}
	r := e.run("doctor", "--cni-plugin-dir", dir)
	if r.code != 1 {
		t.Fatalf("doctor exit = %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	line := lineContaining(r.stdout, "cni plugins")
	if !strings.Contains(line, "FAIL") || !strings.Contains(line, "missing portmap") || !strings.Contains(line, "apt-get install -y containernetworking-plugins") {
		t.Errorf("cni line = %q, want FAIL naming portmap and the fix", line)
	}
	if strings.Contains(line, "bridge") {
		t.Errorf("cni line names a plugin that is present: %q", line)
	}
}

// On a healthy host every blocking check passes and containerd's version is shown.
func TestDoctorHealthyHost(t *testing.T) {
	e := newStackEnv(t)
	out := e.mustRun("doctor")
	for _, name := range []string{"containerd", "runc", "cni plugins", "cgroups", "iptables", "snapshotter", "state directory"} {
		if line := lineContaining(out, name); !strings.HasPrefix(line, "ok") {
			t.Errorf("check %q: %q, want ok", name, line)
		}
	}
	if !strings.Contains(lineContaining(out, "containerd"), "1.") {
		t.Errorf("containerd line lacks a version: %q", lineContaining(out, "containerd"))
	}
}

func TestVersionShowsClientAndServer(t *testing.T) {
	e := newStackEnv(t)
	out := e.mustRun("version")
	if !strings.HasPrefix(out, "stack version ") || !strings.Contains(out, "containerd version 1.") {
		t.Errorf("version output:\n%s", out)
	}
}

func TestCompletionScripts(t *testing.T) {
	e := newStackEnv(t)
	for shell, marker := range map[string]string{"bash": "complete", "zsh": "#compdef stack", "fish": "complete -c stack"} {
		if out := e.mustRun("completion", shell); !strings.Contains(out, marker) {
			t.Errorf("completion %s lacks %q", shell, marker)
		}
	}
}

func lineContaining(out, s string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}
