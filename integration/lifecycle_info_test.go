package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const infoProject = `
services:
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    ports:
      - "127.0.0.1:{{port}}:80"
      - "127.0.0.1::53/udp"
  idle:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`

func TestLifecyclePortPrintsThePublishedAddress(t *testing.T) {
	port := loopbackPort(t, "tcp")
	p := newProjectEnv(t, strings.ReplaceAll(infoProject, "{{port}}", fmt.Sprint(port)))
	p.mustRun("up", "-d")

	if out := strings.TrimSpace(p.mustRun("port", "web", "80")); out != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Errorf("port web 80 = %q, want 127.0.0.1:%d", out, port)
	}
	udp := strings.TrimSpace(p.mustRun("port", "--protocol", "udp", "web", "53"))
	if !strings.HasPrefix(udp, "127.0.0.1:") || strings.HasSuffix(udp, ":0") {
		t.Errorf("port --protocol udp web 53 = %q, want 127.0.0.1:<chosen port>", udp)
	}
	for _, args := range [][]string{
		{"port", "web", "81"},                 // not published
		{"port", "web", "53"},                 // udp only
		{"port", "--index", "2", "web", "80"}, // one replica
		{"port", "web", "http"},
		{"port", "nosuch", "80"},
	} {
		if r := p.run(args...); r.code == 0 || r.stderr == "" {
			t.Errorf("stack %s: exit %d, stderr %q, want an error", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

func TestLifecycleTopListsTheContainersProcesses(t *testing.T) {
	p := newProjectEnv(t, strings.ReplaceAll(infoProject, "{{port}}", fmt.Sprint(loopbackPort(t, "tcp"))))
	p.mustRun("up", "-d")
	web := p.container("web")
	out := p.mustRun("top", "web")
	t.Logf("top web:\n%s", out)
	lines := strings.Split(out, "\n")
	if lines[0] != p.project+"-web-1" || !strings.HasPrefix(lines[1], "UID") {
		t.Fatalf("top web:\n%s", out)
	}
	for _, col := range []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"} {
		if !strings.Contains(lines[1], col) {
			t.Errorf("header %q lacks %s", lines[1], col)
		}
	}
	// The task's PID 1 (the shell) is listed as the host sees it.
	if !strings.Contains(out, fmt.Sprintf(" %d ", web.Pid)) || !strings.Contains(out, "sh -c trap") {
		t.Errorf("top does not list the shell (pid %d):\n%s", web.Pid, out)
	}
	if strings.Contains(out, p.project+"-idle-1") {
		t.Errorf("top web lists idle:\n%s", out)
	}
	all := p.mustRun("top")
	if !strings.Contains(all, p.project+"-idle-1") || !strings.Contains(all, p.project+"-web-1") {
		t.Errorf("top lists not every container:\n%s", all)
	}
}

func TestLifecycleImagesListsTheContainersImages(t *testing.T) {
	p := newProjectEnv(t, strings.ReplaceAll(infoProject, "{{port}}", fmt.Sprint(loopbackPort(t, "tcp"))))
	p.mustRun("up", "-d")
	out := p.mustRun("images")
	t.Logf("images:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "CONTAINER") || !strings.Contains(lines[0], "IMAGE ID") {
		t.Fatalf("images:\n%s", out)
	}
	web := p.container("web")
	id := strings.TrimPrefix(web.ImageID, "sha256:")[:12]
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 5 || f[1] != "busybox" || f[2] != "latest" || f[3] != id {
			t.Errorf("images row %q: want busybox latest %s <size>", l, id)
		}
	}
	if q := strings.TrimSpace(p.mustRun("images", "-q")); q != id {
		t.Errorf("images -q = %q, want %s once", q, id)
	}
	var list []struct {
		ID, ContainerName, Repository, Tag, Platform string
		Size                                         int64
	}
	if err := json.Unmarshal([]byte(p.mustRun("images", "--format", "json", "web")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ContainerName != web.Name || list[0].ID != web.ImageID || list[0].Repository != "busybox" ||
		list[0].Tag != "latest" || list[0].Size <= 0 || list[0].Platform == "" {
		t.Errorf("images --format json web = %+v", list)
	}
}
