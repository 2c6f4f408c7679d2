package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stackdev/stack/engine"
)

const runServices = `
services:
  app:
    image: busybox
    command: ["sh", "-c", "echo from-service"]
    environment:
      FROM_SERVICE: yes
    depends_on: [db]
  db:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`

// oneOffs returns the project's one-off containers.
func oneOffs(st engine.State) []engine.Container {
	var out []engine.Container
	for _, c := range st.Containers {
		if c.OneOff {
			out = append(out, c)
		}
	}
	return out
}

func TestRunPrintsOutputPropagatesTheExitCodeAndStartsDependencies(t *testing.T) {
	p := newProjectEnv(t, runServices)

	r := p.run("run", "--rm", "-e", "EXTRA=1", "app", "sh", "-c", "echo $FROM_SERVICE $EXTRA; echo oops >&2; exit 5")
	if r.code != 5 {
		t.Fatalf("run of `exit 5`: exit %d, want 5\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	if r.stdout != "yes 1\n" || !strings.Contains(r.stderr, "oops\n") {
		t.Errorf("run output: stdout %q (want \"yes 1\\n\"), stderr %q (want \"oops\")", r.stdout, r.stderr)
	}
	st := p.observe()
	if left := oneOffs(st); len(left) != 0 {
		t.Errorf("--rm left one-off containers: %+v", left)
	}
	var db, app int
	for _, c := range st.Containers {
		switch c.Service {
		case "db":
			if c.Status == engine.StatusRunning {
				db++
			}
		case "app":
			app++
		}
	}
	if db != 1 || app != 0 {
		t.Errorf("after run app: %d running db containers (want the dependency started), %d app service containers (want none)", db, app)
	}
}

func TestRunNoDepsLeavesDependenciesAlone(t *testing.T) {
	p := newProjectEnv(t, runServices)

	out := p.mustRun("run", "--rm", "--no-deps", "-w", "/tmp", "-u", "nobody", "app", "sh", "-c", "echo $(pwd) $(id -un)")
	if out != "/tmp nobody\n" {
		t.Errorf("run -w -u printed %q, want \"/tmp nobody\\n\"", out)
	}
	for _, c := range p.observe().Containers {
		t.Errorf("run --no-deps --rm left container %s (%s)", c.Name, c.Service)
	}
}

func TestRunDetachedIsNamedAndLabelledAsAOneOffAndDownRemovesIt(t *testing.T) {
	p := newProjectEnv(t, runServices)

	out := strings.TrimSpace(p.mustRun("run", "-d", "--no-deps", "app", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"))
	want := regexp.MustCompile("^" + regexp.QuoteMeta(p.project) + `-app-run-[0-9a-f]{12}$`)
	if !want.MatchString(out) {
		t.Fatalf("run -d printed %q, want the name %s-app-run-<12 hex>", out, p.project)
	}
	ones := oneOffs(p.observe())
	if len(ones) != 1 {
		t.Fatalf("want one one-off container, got %+v", ones)
	}
	c := ones[0]
	if c.Name != out || c.Status != engine.StatusRunning || c.Service != "app" {
		t.Errorf("one-off container: name %s status %s service %s, want %s running app", c.Name, c.Status, c.Service, out)
	}
	slug := c.Labels["com.docker.compose.slug"]
	if c.Labels[engine.LabelOneOff] != "True" || len(slug) != 64 || !strings.HasSuffix(out, slug[:12]) {
		t.Errorf("labels oneoff=%q slug=%q, want True and a 64-hex slug the name ends with", c.Labels[engine.LabelOneOff], slug)
	}
	// exec does not pick a one-off as the service's container.
	if r := p.run("exec", "-T", "app", "true"); r.code == 0 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("exec app with only a one-off running: exit %d, stderr %q, want \"not running\"", r.code, r.stderr)
	}

	p.mustRun("down", "-t", "0")
	if left := p.observe().Containers; len(left) != 0 {
		t.Errorf("down left containers: %+v", left)
	}
}

func TestRunWithNameAndEntrypoint(t *testing.T) {
	p := newProjectEnv(t, runServices)

	out := p.mustRun("run", "--no-deps", "--name", "custom-one", "--entrypoint", "echo entry", "app", "point")
	if out != "entry point\n" {
		t.Errorf("run --entrypoint printed %q, want \"entry point\\n\"", out)
	}
	ones := oneOffs(p.observe())
	if len(ones) != 1 || ones[0].Name != "custom-one" || ones[0].Status == engine.StatusRunning {
		t.Errorf("without --rm the exited one-off stays, named by --name: %+v", ones)
	}
}

const runPorts = `
services:
  web:
    image: hello
    ports:
      - "127.0.0.1:{{port}}:8080"
`

func TestRunPublishesPortsOnlyWhenAsked(t *testing.T) {
	port := loopbackPort(t, "tcp")
	p := newProjectEnv(t, strings.ReplaceAll(runPorts, "{{port}}", fmt.Sprint(port)))

	plain := strings.TrimSpace(p.mustRun("run", "-d", "web"))
	withPorts := strings.TrimSpace(p.mustRun("run", "-d", "--service-ports", "web"))
	extra := loopbackPort(t, "tcp")
	withP := strings.TrimSpace(p.mustRun("run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:8080", extra), "web"))

	ports := map[string][]engine.PortBinding{}
	for _, c := range oneOffs(p.observe()) {
		ports[c.Name] = c.Ports
	}
	if len(ports[plain]) != 0 {
		t.Errorf("run without --service-ports published %+v", ports[plain])
	}
	if got := ports[withPorts]; len(got) != 1 || got[0].HostPort != uint16(port) {
		t.Errorf("run --service-ports published %+v, want 127.0.0.1:%d", got, port)
	}
	if got := ports[withP]; len(got) != 1 || got[0].HostPort != uint16(extra) {
		t.Errorf("run -p published %+v, want 127.0.0.1:%d", got, extra)
	}
	for _, hp := range []int{port, extra} {
		url := fmt.Sprintf("http://127.0.0.1:%d/", hp)
		var err error
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if _, err = fetch(url); err == nil {
				break
			}
		}
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
		}
	}
}

func TestRunMountsVolumesAndKeepsAliasesOnlyWhenAsked(t *testing.T) {
	p := newProjectEnv(t, runServices)
	if err := os.WriteFile(filepath.Join(p.dir, "f.txt"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}

	out := p.mustRun("run", "--rm", "--no-deps", "-v", p.dir+":/data:ro", "app", "sh", "-c", "cat /data/f.txt; touch /data/x 2>/dev/null || echo ' read-only'")
	if out != "from host read-only\n" {
		t.Errorf("run -v DIR:/data:ro printed %q, want the host file and a read-only mount", out)
	}

	sleep := []string{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"}
	plain := strings.TrimSpace(p.mustRun(append([]string{"run", "-d", "--no-deps", "app"}, sleep...)...))
	aliased := strings.TrimSpace(p.mustRun(append([]string{"run", "-d", "--no-deps", "--use-aliases", "app"}, sleep...)...))
	aliases := map[string][]string{}
	for _, c := range oneOffs(p.observe()) {
		for _, as := range c.Aliases {
			aliases[c.Name] = append(aliases[c.Name], as...)
		}
	}
	if slices.Contains(aliases[plain], "app") || !slices.Contains(aliases[plain], plain) {
		t.Errorf("run without --use-aliases: aliases %v, want its own name and not the service's", aliases[plain])
	}
	if !slices.Contains(aliases[aliased], "app") || !slices.Contains(aliases[aliased], aliased) {
		t.Errorf("run --use-aliases: aliases %v, want the service name and its own name", aliases[aliased])
	}
}

func TestExecDetachedRunsInTheBackground(t *testing.T) {
	p := newProjectEnv(t, runServices)
	p.mustRun("up", "-d", "db")

	if out := p.mustRun("exec", "-d", "db", "sh", "-c", "sleep 1; echo done > /tmp/marker"); out != "" {
		t.Errorf("exec -d printed %q, want nothing", out)
	}
	var out string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if out = p.run("exec", "-T", "db", "cat", "/tmp/marker").stdout; out == "done\n" {
			return
		}
	}
	t.Errorf("the detached exec never wrote its marker (last read %q)", out)
}

func TestRunOnATerminalGivesTheContainerATTY(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("needs script(1) from util-linux to provide a terminal")
	}
	p := newProjectEnv(t, runServices)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-qec", env.stackBin+" run --rm --no-deps app sh -c 'tty; exit 6'", "/dev/null")
	cmd.Dir = p.dir
	cmd.Env = p.cmdEnv()
	out, err := cmd.Output()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "/dev/pts/") || code != 6 {
		t.Errorf("run under a terminal: exit %d, output %q; want a /dev/pts/N terminal and exit 6", code, out)
	}
	if left := oneOffs(p.observe()); len(left) != 0 {
		t.Errorf("--rm left one-off containers: %+v", left)
	}
	if r := p.run("run", "--rm", "-d", "app"); r.code == 0 || !strings.Contains(r.stderr, "cannot be combined") {
		t.Errorf("run --rm -d: exit %d, stderr %q, want a refusal", r.code, r.stderr)
	}
}
