package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const outboundProject = `
services:
  client:
    image: busybox
    command: ` + loop + `
  sealed:
    image: busybox
    command: ` + loop + `
    networks: [inner]
networks:
  inner:
    internal: true
`

// A host that is not a container: a network namespace of the test's own,
// reached through a veth from the host, with no route back to any stack
// subnet. A container reaches it only when its traffic is forwarded out of
// the bridge and masqueraded to the host's address on the veth.
type outsideHost struct {
	ns, hostSide, hostAddr, addr string
}

func newOutsideHost(t *testing.T) outsideHost {
	t.Helper()
	o := outsideHost{ns: fmt.Sprintf("stk-outside-%d", os.Getpid()), hostSide: "stkout0", hostAddr: "10.253.77.1", addr: "10.253.77.2"}
	cmds := [][]string{
		{"ip", "netns", "add", o.ns},
		{"ip", "link", "add", o.hostSide, "type", "veth", "peer", "name", "eth0", "netns", o.ns},
		{"ip", "addr", "add", o.hostAddr + "/24", "dev", o.hostSide},
		{"ip", "link", "set", o.hostSide, "up"},
		{"ip", "-n", o.ns, "addr", "add", o.addr + "/24", "dev", "eth0"},
		{"ip", "-n", o.ns, "link", "set", "eth0", "up"},
		{"ip", "-n", o.ns, "link", "set", "lo", "up"},
	}
	_ = exec.Command("ip", "netns", "del", o.ns).Run() // left by a killed run
	_ = exec.Command("ip", "link", "del", o.hostSide).Run()
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", o.hostSide).Run()
		_ = exec.Command("ip", "netns", "del", o.ns).Run()
	})
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	return o
}

// serve runs busybox httpd in the outside namespace with one file, until
// the test ends.
func (o outsideHost) serve(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", o.ns, "busybox", "httpd", "-f", "-p", o.addr+":8080", "-h", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return "http://" + o.addr + ":8080/hello"
}

// dropAfterStack appends a rule that drops what the subnet sends through
// FORWARD, as a host whose FORWARD policy is DROP would, behind stack's
// own jumps: only stack's accept rules let the traffic through.
func dropAfterStack(t *testing.T, subnet string) {
	t.Helper()
	rule := []string{"FORWARD", "-s", subnet, "-j", "DROP", "-m", "comment", "--comment", "stack test: a DROP policy"}
	if out, err := exec.Command("iptables", append([]string{"-w", "-A"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("iptables: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("iptables", append([]string{"-w", "-D"}, rule...)...).Run() })
}

func TestNetOutboundIsForwardedAndMasqueradedExceptInternal(t *testing.T) {
	p := newProjectEnv(t, outboundProject)
	outside := newOutsideHost(t)
	url := outside.serve(t, "from outside")
	p.up()
	def := networkNamed(t, p, p.project+"_default")
	dropAfterStack(t, def.Subnet)

	client := p.name("client", 1)
	r := p.exec(client, "timeout", "5", "wget", "-qO-", url)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "from outside" {
		t.Errorf("client could not fetch %s from a host outside its network: exit %d, %q %s", url, r.code, r.stdout, r.stderr)
	}
	sealed := p.name("sealed", 1)
	if r := p.exec(sealed, "timeout", "2", "wget", "-qO-", url); r.code == 0 {
		t.Errorf("a container on an internal network fetched %s from outside: %q", url, r.stdout)
	}
}
