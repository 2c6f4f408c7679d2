package integration

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/containerd/api/services/tasks/v1"
)

const downProject = `
services:
  web:
    image: hello
    ports: ["127.0.0.1:{{port}}:8080"]
    networks: [front, back]
    secrets: [token]
  db:
    image: busybox
    command: ` + loop + `
    networks: [back]
    volumes:
      - data:/data
      - cache:/cache
      - /anon
networks:
  front: {}
  back: {}
volumes:
  data: {}
  cache:
    driver_opts:
      type: tmpfs
      device: tmpfs
      o: size=1m
secrets:
  token:
    file: ./token.txt
`

// leftovers is what of a running project can be seen on the host.
type leftovers struct {
	ids, ips, bridges []string
	port              int
}

// TestNetDownVLeavesNothing brings a project with two networks, a
// published port, named, tmpfs and anonymous volumes and a secret up, then
// down -v, and looks for every trace: containers, tasks, snapshots, netns,
// bridges and their veths, iptables rules, mounts and state files.
func TestNetDownVLeavesNothing(t *testing.T) {
	p := newProjectEnv(t, "")
	port := loopbackPort(t, "tcp")
	p.writeCompose(strings.ReplaceAll(downProject, "{{port}}", strconv.Itoa(port)))
	if err := os.WriteFile(filepath.Join(p.dir, "token.txt"), []byte("t0ken"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.up()

	seen := leftovers{port: port}
	st := p.observe()
	for _, c := range st.Containers {
		seen.ids = append(seen.ids, c.ID)
		for _, dev := range []string{"eth0", "eth1"} {
			if r := p.exec(c.Name, "ip", "-4", "-o", "addr", "show", "dev", dev); r.code == 0 {
				seen.ips = append(seen.ips, addrOf(r.stdout))
			}
		}
	}
	for _, n := range st.Networks {
		seen.bridges = append(seen.bridges, n.Bridge)
	}
	if len(seen.ids) != 2 || len(seen.ips) != 3 || len(seen.bridges) != 2 {
		t.Fatalf("before down: ids %v, ips %v, bridges %v", seen.ids, seen.ips, seen.bridges)
	}
	rulesBefore := hostRules(t)
	for _, ip := range seen.ips {
		if !strings.Contains(rulesBefore, ip) {
			t.Logf("note: no iptables rule names %s before down", ip)
		}
	}

	p.mustRun("down", "-v", "-t", "0")

	t.Run("containerd", func(t *testing.T) {
		c, ctx, done := p.raw()
		defer done()
		if list, err := c.ContainerService().List(ctx); err != nil || len(list) != 0 {
			t.Errorf("containers left: %d (%v)", len(list), err)
		}
		resp, err := c.TaskService().List(ctx, &tasks.ListTasksRequest{})
		if err != nil || len(resp.Tasks) != 0 {
			t.Errorf("tasks left: %v (%v)", resp, err)
		}
		for _, id := range seen.ids {
			for _, sn := range []string{"overlayfs", "native"} {
				if _, err := c.SnapshotService(sn).Stat(ctx, id); err == nil {
					t.Errorf("snapshot %s left in %s", id, sn)
				}
			}
		}
	})
	t.Run("netns bridges veths", func(t *testing.T) {
		for _, id := range seen.ids {
			if _, err := os.Stat("/var/run/netns/stack-" + id[:24]); err == nil {
				t.Errorf("netns of %s left", id[:12])
			}
		}
		links, err := exec.Command("ip", "-o", "link").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, br := range seen.bridges {
			if strings.Contains(string(links), " "+br+":") || strings.Contains(string(links), "master "+br+" ") {
				t.Errorf("bridge %s or a veth on it left:\n%s", br, grepText(string(links), br))
			}
		}
	})
	t.Run("iptables", func(t *testing.T) {
		rules := hostRules(t)
		needles := append(append([]string{}, seen.bridges...), fmt.Sprintf("--dport %d ", port))
		for _, ip := range seen.ips {
			needles = append(needles, ip+"/", ip+":", "-d "+ip+" ", "-s "+ip+" ")
		}
		for _, id := range seen.ids {
			needles = append(needles, id[:12])
		}
		for _, n := range needles {
			if l := grepText(rules, n); l != "" {
				t.Errorf("rules naming %q left:\n%s", n, l)
			}
		}
	})
	t.Run("mounts", func(t *testing.T) {
		info, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		if l := grepText(string(info), p.stateDir); l != "" {
			t.Errorf("mounts under the state directory left:\n%s", l)
		}
		for _, id := range seen.ids {
			if l := grepText(string(info), id[:24]); l != "" {
				t.Errorf("mounts of %s left:\n%s", id[:12], l)
			}
		}
	})
	t.Run("state directory", func(t *testing.T) {
		var files []string
		err := filepath.WalkDir(p.stateDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && !strings.HasSuffix(path, ".lock") {
				files = append(files, strings.TrimPrefix(path, p.stateDir))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			for _, key := range append(append([]string{p.project}, seen.ids...), seen.ips...) {
				if strings.Contains(f, key) || strings.HasPrefix(f, "/containers/") || strings.HasPrefix(f, "/volumes/") {
					t.Errorf("state file left: %s", f)
					break
				}
			}
		}
		if t.Failed() {
			t.Logf("all files left: %v", files)
		}
	})
}

// hostRules is every iptables table as iptables-save prints it.
func hostRules(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	return string(out)
}

// deleteHostRules deletes each rule iptables-save prints that match picks,
// as a reboot or someone else's cleanup would.
func deleteHostRules(t *testing.T, match func(rule string) bool) {
	t.Helper()
	table := "filter"
	for _, l := range strings.Split(hostRules(t), "\n") {
		if name, ok := strings.CutPrefix(l, "*"); ok {
			table = name
		}
		if strings.HasPrefix(l, "-A ") && match(l) {
			// iptables-save quotes comments as sh does.
			cmd := "iptables -w -t " + table + " -D " + strings.TrimPrefix(l, "-A ")
			if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v: %s", cmd, err, out)
			}
		}
	}
}

// grepText returns the lines of s that contain sub.
func grepText(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
