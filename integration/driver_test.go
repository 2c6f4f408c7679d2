package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func TestDriverContainerLifecycleLeavesNothing(t *testing.T) {
	e := newDriverEnv(t)
	net := e.network("default")
	spec := e.spec("app", net.Name)
	spec.Process.StopGracePeriod = time.Second
	id, err := e.d.CreateContainer(e.ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	c := e.container(id)
	if c.Status != engine.StatusCreated || c.Name != spec.Name || c.Service != "app" || c.Number != 1 || c.ConfigHash != "hash-app" {
		t.Fatalf("after create observed %+v", c)
	}
	if c.Image != busybox || !strings.HasPrefix(c.ImageID, "sha256:") || len(c.Networks) != 1 || c.Networks[0] != net.Name {
		t.Fatalf("after create: image %q id %q networks %v", c.Image, c.ImageID, c.Networks)
	}
	if err := e.d.StartContainer(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	c = e.container(id)
	if c.Status != engine.StatusRunning || c.Pid == 0 || c.StartedAt.IsZero() {
		t.Fatalf("after start observed status %s pid %d started %v", c.Status, c.Pid, c.StartedAt)
	}
	if err := e.d.StartContainer(e.ctx, id); err != nil {
		t.Fatalf("starting a running container again: %v", err)
	}
	if again := e.container(id); again.Pid != c.Pid || !again.StartedAt.Equal(c.StartedAt) {
		t.Fatalf("second start restarted the task: pid %d→%d", c.Pid, again.Pid)
	}
	ip := containerIP(t, e.mustExec(id, "ip", "-4", "-o", "addr", "show", "eth0"))
	if !strings.HasPrefix(ip, strings.TrimSuffix(net.Subnet, ".0/24")) {
		t.Fatalf("eth0 address %s is not in %s", ip, net.Subnet)
	}
	if got := e.container(id).Addresses[net.Name]; got != ip {
		t.Fatalf("observed address on %s = %q, want %s", net.Name, got, ip)
	}
	hosts := e.mustExec(id, "cat", "/etc/hosts")
	if !strings.Contains(hosts, ip+"\t"+id[:12]) {
		t.Fatalf("/etc/hosts lacks %s %s:\n%s", ip, id[:12], hosts)
	}
	// sleep as PID 1 ignores SIGTERM: the stop must escalate to SIGKILL.
	if err := e.d.StopContainer(e.ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	if c := e.container(id); c.Status != engine.StatusExited || c.ExitCode != 137 {
		t.Fatalf("after stop: status %s exit %d, want exited 137", c.Status, c.ExitCode)
	}
	if err := e.d.StopContainer(e.ctx, id, time.Second); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if err := e.d.StartContainer(e.ctx, id); err != nil {
		t.Fatalf("start after stop: %v", err)
	}
	if c := e.container(id); c.Status != engine.StatusRunning {
		t.Fatalf("after restart: %s", c.Status)
	}
	if err := e.d.RemoveContainer(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.d.RemoveContainer(e.ctx, id); err != nil {
		t.Fatalf("removing a removed container: %v", err)
	}
	e.assertGone(id, ip, net)
	if err := e.d.RemoveNetwork(e.ctx, net.Name); err != nil {
		t.Fatal(err)
	}
	assertNetworkGone(t, e, net)
}

func TestDriverRenameKeepsID(t *testing.T) {
	e := newDriverEnv(t)
	spec := e.spec("app")
	spec.Network.Mode = "none"
	id, err := e.d.CreateContainer(e.ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.d.RenameContainer(e.ctx, id, "renamed-1"); err != nil {
		t.Fatal(err)
	}
	if c := e.container(id); c.Name != "renamed-1" {
		t.Fatalf("name after rename = %q", c.Name)
	}
}

func TestDriverProcessEnvUserWorkdir(t *testing.T) {
	e := newDriverEnv(t)
	spec := e.spec("app")
	spec.Network.Mode = "none"
	spec.Process.Entrypoint = []string{"sh", "-c"}
	spec.Process.Command = []string{"exec sleep 3600"}
	spec.Process.Env = []string{"GREETING=hello world"}
	spec.Process.WorkingDir = "/tmp"
	spec.Process.User = "65534:65534"
	spec.Process.Hostname = "apphost"
	spec.Labels = map[string]string{"custom": "label"}
	c := e.run(spec)
	if c.Command != "sh -c exec sleep 3600" {
		t.Errorf("observed command %q", c.Command)
	}
	if c.Labels["custom"] != "label" {
		t.Fatalf("labels %v lack custom=label", c.Labels)
	}
	checks := map[string][]string{
		"hello world\n": {"sh", "-c", "echo $GREETING"},
		"/tmp\n":        {"pwd"},
		"65534 65534\n": {"sh", "-c", "echo $(id -u) $(id -g)"},
		"apphost\n":     {"hostname"},
		"sleep 3600 ":   {"sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"},
	}
	for want, args := range checks {
		if got := e.mustExec(c.ID, args...); got != want {
			t.Errorf("%v printed %q, want %q", args, got, want)
		}
	}
}

func TestDriverResourcesAndSecurity(t *testing.T) {
	e := newDriverEnv(t)
	spec := e.spec("app")
	spec.Network.Mode = "none"
	spec.Resources = engine.Resources{MemoryLimit: 64 << 20, PidsLimit: 50, NanoCPUs: 5e8, ShmSize: 8 << 20}
	spec.Security = engine.Security{ReadOnlyRootfs: true, CapDrop: []string{"ALL"}, CapAdd: []string{"chown"},
		NoNewPrivileges: true, Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}
	spec.Mounts = []engine.Mount{{Type: engine.MountTmpfs, Target: "/scratch", TmpfsSize: 1 << 20}}
	c := e.run(spec)
	status := e.mustExec(c.ID, "cat", "/proc/1/status")
	if !strings.Contains(status, "CapEff:\t0000000000000001") || !strings.Contains(status, "NoNewPrivs:\t1") {
		t.Errorf("capabilities / no_new_privs not applied:\n%s", grepLines(status, "Cap")+grepLines(status, "NoNew"))
	}
	if _, code := e.exec(c.ID, "touch", "/rootfile"); code == 0 {
		t.Error("the root filesystem is writable despite read_only")
	}
	e.mustExec(c.ID, "touch", "/scratch/ok")
	if got := e.mustExec(c.ID, "cat", "/proc/sys/net/ipv4/ip_forward"); got != "1\n" {
		t.Errorf("sysctl ip_forward = %q", got)
	}
	if got := e.mustExec(c.ID, "sh", "-c", "df -k /dev/shm | tail -1 | awk '{print $2}'"); got != "8192\n" {
		t.Errorf("/dev/shm size = %q KiB, want 8192", got)
	}
	cg := fmt.Sprintf("/sys/fs/cgroup/memory/%s/%s/memory.limit_in_bytes", e.ns, c.ID)
	if data, err := os.ReadFile(cg); err == nil && strings.TrimSpace(string(data)) != fmt.Sprint(64<<20) {
		t.Errorf("memory limit %s = %s", cg, data)
	}
	pids := fmt.Sprintf("/sys/fs/cgroup/pids/%s/%s/pids.max", e.ns, c.ID)
	if data, err := os.ReadFile(pids); err == nil && strings.TrimSpace(string(data)) != "50" {
		t.Errorf("pids.max = %s", data)
	}
}

func TestDriverSecretsHaveOwnerAndMode(t *testing.T) {
	e := newDriverEnv(t)
	spec := e.spec("app")
	spec.Network.Mode = "none"
	spec.Files = []engine.File{
		{Kind: "secret", Name: "token", Target: "/run/secrets/token", Content: []byte("s3cret"), UID: 1000, GID: 1001, Mode: 0o400},
		{Kind: "config", Name: "conf", Target: "/etc/app/app.conf", Content: []byte("key=value\n"), Mode: 0o444},
	}
	c := e.run(spec)
	if got := e.mustExec(c.ID, "stat", "-c", "%u %g %a", "/run/secrets/token"); got != "1000 1001 400\n" {
		t.Errorf("secret owner and mode = %q", got)
	}
	if got := e.mustExec(c.ID, "cat", "/run/secrets/token"); got != "s3cret" {
		t.Errorf("secret content = %q", got)
	}
	if got := e.mustExec(c.ID, "cat", "/etc/app/app.conf"); got != "key=value\n" {
		t.Errorf("config content = %q", got)
	}
	if _, code := e.exec(c.ID, "sh", "-c", "echo x > /run/secrets/token"); code == 0 {
		t.Error("the secret is writable")
	}
	st, err := e.d.Observe(e.ctx, e.project)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := e.raw.ContainerService().Get(e.ctx, c.ID); bytes.Contains(raw.Extensions["dev.stack.spec"].GetValue(), []byte("s3cret")) {
		t.Error("the secret's content is stored in containerd's metadata")
	}
	_ = st
}

func TestDriverNamedVolumeSurvivesRecreateAndCopiesImageContent(t *testing.T) {
	e := newDriverEnv(t)
	vol := engine.VolumeSpec{Name: e.project + "_data", Project: e.project, Key: "data", Driver: "local"}
	if err := e.d.CreateVolume(e.ctx, vol); err != nil {
		t.Fatal(err)
	}
	if err := e.d.CreateVolume(e.ctx, vol); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("creating the volume twice: %v, want already exists", err)
	}
	spec := e.spec("app")
	spec.Network.Mode = "none"
	spec.Mounts = []engine.Mount{{Type: engine.MountVolume, Source: vol.Name, Target: "/var/www"}}
	first := e.run(spec)
	if got := e.mustExec(first.ID, "cat", "/var/www/index.html"); !strings.Contains(got, "busybox httpd works") {
		t.Fatalf("the image's /var/www was not copied into the empty volume: %q", got)
	}
	e.mustExec(first.ID, "sh", "-c", "echo kept > /var/www/kept.txt")
	if len(first.Volumes) != 1 || first.Volumes[0] != vol.Name {
		t.Fatalf("observed volumes %v", first.Volumes)
	}
	if err := e.d.RemoveVolume(e.ctx, vol.Name); err == nil {
		t.Fatal("removing a volume in use succeeded")
	}
	if err := e.d.RemoveContainer(e.ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	second := e.run(spec)
	if got := e.mustExec(second.ID, "cat", "/var/www/kept.txt"); got != "kept\n" {
		t.Fatalf("data after recreate = %q", got)
	}
	if err := e.d.RemoveContainer(e.ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.d.RemoveVolume(e.ctx, vol.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, "volumes", vol.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volume directory remains: %v", err)
	}
}

func TestDriverVolumeNocopyAndTmpfsDriverOpts(t *testing.T) {
	e := newDriverEnv(t)
	vol := engine.VolumeSpec{Name: e.project + "_tmp", Project: e.project, Driver: "local",
		DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}}
	if err := e.d.CreateVolume(e.ctx, vol); err != nil {
		t.Fatal(err)
	}
	spec := e.spec("app")
	spec.Network.Mode = "none"
	spec.Mounts = []engine.Mount{{Type: engine.MountVolume, Source: vol.Name, Target: "/var/www", NoCopy: true}}
	c := e.run(spec)
	if got := e.mustExec(c.ID, "ls", "-A", "/var/www"); got != "" {
		t.Errorf("nocopy volume is not empty: %q", got)
	}
	if got := e.mustExec(c.ID, "sh", "-c", "df -k /var/www | tail -1 | awk '{print $2}'"); got != "1024\n" {
		t.Errorf("tmpfs volume size = %q KiB, want 1024", got)
	}
	if err := e.d.RemoveContainer(e.ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.d.RemoveVolume(e.ctx, vol.Name); err != nil {
		t.Fatal(err)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mi, []byte(vol.Name)) {
		t.Errorf("the tmpfs volume is still mounted")
	}
}

func TestDriverVolumeBindDriverOpts(t *testing.T) {
	e := newDriverEnv(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "on-host"), []byte("yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vol := engine.VolumeSpec{Name: e.project + "_bound", Project: e.project, Driver: "local",
		DriverOpts: map[string]string{"type": "none", "device": host, "o": "bind"}}
	if err := e.d.CreateVolume(e.ctx, vol); err != nil {
		t.Fatal(err)
	}
	spec := e.spec("app")
	spec.Network.Mode = "none"
	spec.Mounts = []engine.Mount{{Type: engine.MountVolume, Source: vol.Name, Target: "/data"}}
	c := e.run(spec)
	if got := e.mustExec(c.ID, "cat", "/data/on-host"); got != "yes\n" {
		t.Errorf("bind volume content = %q", got)
	}
	if err := e.d.RemoveContainer(e.ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.d.RemoveVolume(e.ctx, vol.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(host, "on-host")); err != nil {
		t.Errorf("removing the volume touched the bound host directory: %v", err)
	}
}

func TestDriverRejectsNamesLeavingTheStateDirectory(t *testing.T) {
	e := newDriverEnv(t)
	for _, name := range []string{"../escape", "a/b", ".."} {
		if err := e.d.CreateVolume(e.ctx, engine.VolumeSpec{Name: name}); err == nil {
			t.Errorf("volume %q was accepted", name)
		}
		if err := e.d.CreateNetwork(e.ctx, engine.NetworkSpec{Name: name}); err == nil {
			t.Errorf("network %q was accepted", name)
		}
	}
}

func TestDriverBindMountCreatesHostPath(t *testing.T) {
	e := newDriverEnv(t)
	dir := filepath.Join(t.TempDir(), "created")
	spec := e.spec("app")
	spec.Network.Mode = "none"
	spec.Mounts = []engine.Mount{{Type: engine.MountBind, Source: dir, Target: "/host", CreateHostPath: true}}
	c := e.run(spec)
	e.mustExec(c.ID, "sh", "-c", "echo from-container > /host/f")
	if data, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(data) != "from-container\n" {
		t.Fatalf("host file = %q, %v", data, err)
	}
	spec.Name += "-missing" // names are unique: the first container still holds spec.Name
	spec.Mounts[0] = engine.Mount{Type: engine.MountBind, Source: filepath.Join(dir, "missing"), Target: "/x"}
	if _, err := e.d.CreateContainer(e.ctx, spec); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing bind source without create_host_path: %v", err)
	}
}

func TestDriverLogsGoToAFileTheShimOwns(t *testing.T) {
	for _, tty := range []bool{false, true} {
		t.Run(fmt.Sprintf("tty=%v", tty), func(t *testing.T) {
			e := newDriverEnv(t)
			spec := e.spec("app")
			spec.Network.Mode = "none"
			spec.Process.Command = []string{"sh", "-c", "echo out; echo err >&2; if [ -t 1 ]; then echo on-a-tty; fi; exec sleep 3600"}
			spec.Process.TTY = tty
			c := e.run(spec)
			// Close the driver: the shim keeps writing without it.
			e.d.Close()
			want := []string{"out", "err"}
			if tty {
				want = append(want, "on-a-tty")
			}
			waitForLog(t, filepath.Join(e.stateDir, "containers", c.ID, c.ID+"-json.log"), want)
			d, err := ctrd.New(e.ctx, ctrd.Options{Address: env.socket, Namespace: e.ns, StateDir: e.stateDir})
			if err != nil {
				t.Fatal(err)
			}
			e.d = d
		})
	}
}

func TestDriverExitedTaskIsObservedAndRestartable(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	spec := e.spec("job", n.Name)
	spec.Process.Command = []string{"sh", "-c", "exit 3"}
	id, err := e.d.CreateContainer(e.ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		if err := e.d.StartContainer(e.ctx, id); err != nil {
			t.Fatalf("start %d: %v", round, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for c := e.container(id); c.Status != engine.StatusExited || c.ExitCode != 3; c = e.container(id) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: status %s exit %d, want exited 3", round, c.Status, c.ExitCode)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := e.d.RemoveContainer(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	e.assertGone(id, "", n)
}

// A task deleted behind stack's back (a crash, `ctr task rm`) leaves the
// netns and the CNI attachment; removal must still release them.
func TestDriverRemoveFinishesAfterTheTaskVanished(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	c := e.run(e.spec("app", n.Name))
	ip := containerIP(t, e.mustExec(c.ID, "ip", "-4", "-o", "addr", "show", "eth0"))
	ctr, err := e.raw.LoadContainer(e.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.Task(e.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := task.Delete(e.ctx, containerd.WithProcessKill); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, "networks", "ipam", n.Name, ip)); err != nil {
		t.Fatalf("the lease should still be held before removal: %v", err)
	}
	if err := e.d.RemoveContainer(e.ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	e.assertGone(c.ID, ip, n)
}

func TestDriverInitRunsAsPID1(t *testing.T) {
	if _, err := exec.LookPath("tini-static"); err != nil {
		if _, err := exec.LookPath("docker-init"); err != nil {
			t.Skip("no static init on this host (apt-get install tini)")
		}
	}
	e := newDriverEnv(t)
	spec := e.spec("app")
	spec.Network.Mode = "none"
	spec.Process.Init = true
	c := e.run(spec)
	cmdline := e.mustExec(c.ID, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline")
	if !strings.HasPrefix(cmdline, "/sbin/docker-init -- sleep 3600") {
		t.Fatalf("PID 1 is %q, want the init running sleep", cmdline)
	}
	// With an init, SIGTERM ends the container without waiting for SIGKILL.
	start := time.Now()
	if err := e.d.StopContainer(e.ctx, c.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stop took %v: the init did not forward SIGTERM", took)
	}
}

func TestDriverStopUsesTheStopSignal(t *testing.T) {
	e := newDriverEnv(t)
	spec := e.spec("app")
	spec.Network.Mode = "none"
	spec.Process.Command = []string{"sh", "-c", "trap 'exit 7' USR1; echo ready; while :; do sleep 0.1; done"}
	spec.Process.StopSignal = "SIGUSR1"
	c := e.run(spec)
	waitForLog(t, e.d.LogPath(c.ID), []string{"ready"})
	if err := e.d.StopContainer(e.ctx, c.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := e.container(c.ID); got.Status != engine.StatusExited || got.ExitCode != 7 {
		t.Fatalf("after stop with SIGUSR1: %s exit %d, want exited 7 (the trap ran)", got.Status, got.ExitCode)
	}
}

// The bridge plugin's DEL fails for good when the container's masquerade
// chain is already gone; removal must still finish.
// On a network made by an earlier version, whose containers have the bridge
// plugin's masquerade chain each.
func TestDriverRemoveFinishesWhenTheMasqueradeChainIsGone(t *testing.T) {
	e := newDriverEnv(t)
	n := e.earlierNetwork("default")
	c := e.run(e.spec("app", n.Name))
	ip := c.Addresses[n.Name]
	var rule, chain string
	for _, line := range strings.Split(iptablesSave(t), "\n") {
		if strings.HasPrefix(line, "-A POSTROUTING") && strings.Contains(line, c.ID) {
			rule = line
			f := strings.Fields(line)
			for i := range f[:len(f)-1] {
				if f[i] == "-j" {
					chain = f[i+1]
				}
			}
		}
	}
	if rule == "" || chain == "" {
		t.Fatalf("no masquerade rule for %s", c.ID)
	}
	for _, cmd := range []string{"iptables -w -t nat -D " + strings.TrimPrefix(rule, "-A "), "iptables -w -t nat -F " + chain, "iptables -w -t nat -X " + chain} {
		if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", cmd, err, out)
		}
	}
	if err := e.d.RemoveContainer(e.ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	e.assertGone(c.ID, ip, n)
}

// After a reboot the netns bind mount is gone while the records remain:
// removal must still release the lease, and on a network of an earlier
// version the container's masquerade rule.
func TestDriverRemoveWithoutTheNetns(t *testing.T) { removeWithoutTheNetns(t, false) }

func TestDriverRemoveWithoutTheNetnsOnAnEarlierVersionsNetwork(t *testing.T) {
	removeWithoutTheNetns(t, true)
}

func removeWithoutTheNetns(t *testing.T, earlier bool) {
	e := newDriverEnv(t)
	network := e.network
	if earlier {
		network = func(key string, _ ...func(*engine.NetworkSpec)) engine.Network { return e.earlierNetwork(key) }
	}
	n := network("default")
	c := e.run(e.spec("app", n.Name))
	ip := c.Addresses[n.Name]
	ctr, err := e.raw.LoadContainer(e.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.Task(e.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := task.Delete(e.ctx, containerd.WithProcessKill); err != nil {
		t.Fatal(err)
	}
	ns := "/var/run/netns/stack-" + c.ID[:24]
	if out, err := exec.Command("umount", ns).CombinedOutput(); err != nil {
		t.Fatalf("umount %s: %v %s", ns, err, out)
	}
	if err := os.Remove(ns); err != nil {
		t.Fatal(err)
	}
	if err := e.d.RemoveContainer(e.ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	e.assertGone(c.ID, ip, n)
}

func TestDriverConcurrentCallsOnOneContainerAgree(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	id, err := e.d.CreateContainer(e.ctx, e.spec("app", n.Name))
	if err != nil {
		t.Fatal(err)
	}
	const calls = 4
	errs := make(chan error, calls)
	for i := 0; i < calls; i++ {
		go func() { errs <- e.d.StartContainer(e.ctx, id) }()
	}
	for i := 0; i < calls; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent start: %v", err)
		}
	}
	c := e.container(id)
	if c.Status != engine.StatusRunning || c.Addresses[n.Name] == "" {
		t.Fatalf("after concurrent starts: %s, addresses %v", c.Status, c.Addresses)
	}
	e.mustExec(id, "ping", "-c", "1", "-W", "2", n.Gateway)
	for i := 0; i < calls; i++ {
		go func() {
			if i%2 == 0 {
				errs <- e.d.StopContainer(e.ctx, id, time.Second)
			} else {
				errs <- e.d.RemoveContainer(e.ctx, id)
			}
		}()
	}
	for i := 0; i < calls; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent stop and remove: %v", err)
		}
	}
	e.assertGone(id, c.Addresses[n.Name], n)
}
