package integration

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stackdev/stack/engine"
)

const cpProject = `
services:
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    volumes:
      - data:/data
      - ./rodir:/ro:ro
    tmpfs:
      - /scratch
  pair:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    scale: 2
  once:
    image: busybox
    command: ["sh", "-c", "echo made > /made"]
volumes:
  data:
`

// hostTree writes a small tree on the host: conf/app.conf (0640, owned by
// 1234:5678), conf/run.sh (0755) and conf/sub/deep.txt.
func cpHostTree(t *testing.T, dir string) {
	t.Helper()
	files := map[string]os.FileMode{"conf/app.conf": 0o640, "conf/run.sh": 0o755, "conf/sub/deep.txt": 0o600}
	for name, mode := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("content of "+name+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		if err := os.Lchown(p, 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCpCopiesFilesAndDirectoriesBothWaysWithDockerCpRules(t *testing.T) {
	p := newProjectEnv(t, cpProject)
	p.mustRun("up", "-d")
	web := p.name("web", 1)
	cpHostTree(t, p.dir)

	// A file into an existing directory keeps its name and mode; without -a
	// it belongs to the container's root, with -a to its owner on the host.
	p.mustRun("cp", "conf/app.conf", "web:/tmp/")
	if got := p.sh(web, "cat /tmp/app.conf; stat -c '%a %u %g' /tmp/app.conf"); got != "content of conf/app.conf\n640 0 0" {
		t.Errorf("cp conf/app.conf web:/tmp/ gave %q", got)
	}
	p.mustRun("cp", "-a", "conf/app.conf", "web:/tmp/kept.conf")
	if got := p.sh(web, "stat -c '%a %u %g' /tmp/kept.conf"); got != "640 1234 5678" {
		t.Errorf("cp -a: %q, want 640 1234 5678", got)
	}
	// A directory to a new name is created with the content; to an existing
	// directory it lands inside; with "/." its content merges.
	p.mustRun("cp", "conf", "web:/tmp/newconf")
	p.mustRun("cp", "conf", "web:/tmp/newconf")
	p.sh(web, "mkdir /tmp/merged")
	p.mustRun("cp", "conf/.", "web:/tmp/merged")
	got := p.sh(web, "cd /tmp && find newconf merged -type f | sort && stat -c '%a' newconf/run.sh newconf/sub/deep.txt")
	want := "merged/app.conf\nmerged/run.sh\nmerged/sub/deep.txt\nnewconf/app.conf\nnewconf/conf/app.conf\nnewconf/conf/run.sh\nnewconf/conf/sub/deep.txt\nnewconf/run.sh\nnewconf/sub/deep.txt\n755\n600"
	if got != want {
		t.Errorf("directories copied in:\n%s\nwant:\n%s", got, want)
	}

	// Out of the container: a directory to a new host path, a file into an
	// existing directory.
	p.sh(web, "mkdir -p /srv/site/img && echo '<h1>hi</h1>' > /srv/site/index.html && chmod 604 /srv/site/index.html && ln -s index.html /srv/site/home")
	p.mustRun("cp", "web:/srv/site", "out")
	if data, _ := os.ReadFile(filepath.Join(p.dir, "out/index.html")); string(data) != "<h1>hi</h1>\n" {
		t.Errorf("out/index.html = %q", data)
	}
	if st, err := os.Stat(filepath.Join(p.dir, "out/index.html")); err != nil || st.Mode().Perm() != 0o604 {
		t.Errorf("out/index.html: %v %v, want mode 0604", st, err)
	}
	if link, _ := os.Readlink(filepath.Join(p.dir, "out/home")); link != "index.html" {
		t.Errorf("out/home -> %q, want the symlink as it is", link)
	}
	if st, err := os.Stat(filepath.Join(p.dir, "out/img")); err != nil || !st.IsDir() {
		t.Errorf("empty directory img not copied: %v", err)
	}
	// Copied out, files belong to the user running stack; with -a to their
	// owner in the container.
	p.sh(web, "chown 1234:5678 /srv/site/index.html")
	p.mustRun("cp", "web:/srv/site/index.html", "mine.html")
	p.mustRun("cp", "-a", "web:/srv/site/index.html", "kept.html")
	for name, want := range map[string][2]uint32{"mine.html": {uint32(os.Getuid()), uint32(os.Getgid())}, "kept.html": {1234, 5678}} {
		st, err := os.Stat(filepath.Join(p.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != want[0] || sys.Gid != want[1] {
			t.Errorf("%s belongs to %d:%d, want %d:%d", name, sys.Uid, sys.Gid, want[0], want[1])
		}
	}
	p.mustRun("cp", "web:/etc/passwd", "out/")
	if data, _ := os.ReadFile(filepath.Join(p.dir, "out/passwd")); !strings.HasPrefix(string(data), "root:") {
		t.Errorf("out/passwd = %q", data)
	}

	// Each copy is reported on stderr; --dry-run copies nothing.
	if r := p.run("cp", "conf/app.conf", "web:/tmp/reported"); !strings.Contains(r.stderr, "Container "+web+"  Copied conf/app.conf to "+web+":/tmp/reported") {
		t.Errorf("cp reports %q", r.stderr)
	}
	if r := p.run("--dry-run", "cp", "conf/app.conf", "web:/tmp/dry"); r.code != 0 || !strings.Contains(r.stderr, "DRY-RUN MODE") {
		t.Errorf("--dry-run cp: exit %d, %q", r.code, r.stderr)
	}
	if r := p.exec(web, "test", "-e", "/tmp/dry"); r.code == 0 {
		t.Error("--dry-run cp copied the file")
	}

	// docker cp's refusals, with the container and path named.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cp", "web:/nope", "out"}, "could not find /nope in container " + web + ": no such file or directory"},
		{[]string{"cp", "conf", "web:/etc/passwd"}, "cannot copy a directory to a file"},
		{[]string{"cp", "conf/app.conf", "web:/tmp/nodir/"}, "must exist"},
		{[]string{"cp", "conf/app.conf", "web:/no/such/parent"}, "no such file or directory"},
		{[]string{"cp", "web:/etc/passwd", "pair:/tmp"}, "copying between services is not supported"},
		{[]string{"cp", "conf", "nosuch:/tmp"}, "no such service: nosuch"},
	} {
		r := p.run(tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("stack %s: exit %d, stderr %q; want an error with %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
}

func TestCpReachesTheContainersVolumeAndTmpfsMounts(t *testing.T) {
	p := newProjectEnv(t, cpProject)
	p.mustRun("up", "-d")
	web := p.name("web", 1)
	cpHostTree(t, p.dir)

	p.mustRun("cp", "conf/app.conf", "web:/data/app.conf")
	p.mustRun("cp", "conf/run.sh", "web:/scratch/")
	// In the named volume on the host, and on the tmpfs only the container sees.
	var mountpoint string
	for _, v := range p.observe().Volumes {
		if v.Name == p.project+"_data" {
			mountpoint = v.Mountpoint
		}
	}
	if data, err := os.ReadFile(filepath.Join(mountpoint, "app.conf")); err != nil || string(data) != "content of conf/app.conf\n" {
		t.Errorf("volume %s_data at %q: app.conf = %q, %v", p.project, mountpoint, data, err)
	}
	if got := p.sh(web, "grep -c scratch /proc/mounts; cat /scratch/run.sh"); got != "1\ncontent of conf/run.sh" {
		t.Errorf("tmpfs: %q", got)
	}
	// A read-only mount refuses the copy, as in the container.
	if r := p.run("cp", "conf/run.sh", "web:/ro/"); r.code == 0 || !strings.Contains(r.stderr, "read-only file system") {
		t.Errorf("cp into a :ro mount: exit %d, %q", r.code, r.stderr)
	}
	p.sh(web, "echo from-tmpfs > /scratch/made-inside")
	p.mustRun("cp", "web:/scratch/made-inside", "made")
	if data, _ := os.ReadFile(filepath.Join(p.dir, "made")); string(data) != "from-tmpfs\n" {
		t.Errorf("copied out of the tmpfs: %q", data)
	}
}

func TestCpToAServiceReachesEveryReplicaOrTheIndexOne(t *testing.T) {
	p := newProjectEnv(t, cpProject)
	p.mustRun("up", "-d")
	cpHostTree(t, p.dir)

	p.mustRun("cp", "conf/app.conf", "pair:/tmp/all.conf")
	p.mustRun("cp", "--index", "2", "conf/app.conf", "pair:/tmp/second.conf")
	for n, want := range map[int]string{1: "all.conf", 2: "all.conf second.conf"} {
		if got := p.sh(p.name("pair", n), "cd /tmp && echo *.conf"); got != want {
			t.Errorf("pair-%d has %q, want %q", n, got, want)
		}
	}
	// From a service: its first replica.
	p.sh(p.name("pair", 1), "echo one > /tmp/who")
	p.sh(p.name("pair", 2), "echo two > /tmp/who")
	p.mustRun("cp", "pair:/tmp/who", "who")
	p.mustRun("cp", "--index", "2", "pair:/tmp/who", "who2")
	one, _ := os.ReadFile(filepath.Join(p.dir, "who"))
	two, _ := os.ReadFile(filepath.Join(p.dir, "who2"))
	if string(one) != "one\n" || string(two) != "two\n" {
		t.Errorf("from pair: %q, with --index 2: %q", one, two)
	}
	if r := p.run("cp", "--index", "3", "conf/app.conf", "pair:/tmp/"); r.code == 0 || !strings.Contains(r.stderr, "--index 3") {
		t.Errorf("--index 3: exit %d, %q", r.code, r.stderr)
	}
}

func TestCpTarStreamsOnStdinAndStdout(t *testing.T) {
	p := newProjectEnv(t, cpProject)
	p.mustRun("up", "-d")
	web := p.name("web", 1)
	p.sh(web, "mkdir -p /srv/www && echo page > /srv/www/index.html")

	out := p.mustRun("cp", "web:/srv/www", "-")
	entries := map[string]string{}
	tr := tar.NewReader(strings.NewReader(out))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("cp web:/srv/www - is not a tar stream: %v", err)
		}
		body, _ := io.ReadAll(tr)
		entries[hdr.Name] = string(body)
	}
	if len(entries) != 2 || entries["www/index.html"] != "page\n" {
		t.Errorf("tar entries %q, want www/ and www/index.html", entries)
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o750})
	tw.WriteHeader(&tar.Header{Name: "pkg/bin", Typeflag: tar.TypeReg, Mode: 0o755, Size: 4, Uid: 42, Gid: 43})
	tw.Write([]byte("bin\n"))
	tw.Close()
	if r := p.runIn(p.dir, buf.Bytes(), "cp", "-a", "-", "web:/tmp"); r.code != 0 {
		t.Fatalf("cp - web:/tmp: exit %d: %s", r.code, r.stderr)
	}
	if got := p.sh(web, "cat /tmp/pkg/bin; stat -c '%a %u %g' /tmp/pkg /tmp/pkg/bin"); got != "bin\n750 0 0\n755 42 43" {
		t.Errorf("extracted: %q", got)
	}
	if r := p.runIn(p.dir, buf.Bytes(), "cp", "-", "web:/etc/passwd"); r.code == 0 || !strings.Contains(r.stderr, "must be a directory") {
		t.Errorf("cp - onto a file: exit %d, %q", r.code, r.stderr)
	}
}

func TestCpFromAndToAStoppedContainer(t *testing.T) {
	p := newProjectEnv(t, cpProject)
	p.mustRun("up", "-d", "web")
	web := p.name("web", 1)
	p.sh(web, "echo in-layer > /root/note && echo in-volume > /data/v")
	p.mustRun("stop", "-t", "0", "web")
	cpHostTree(t, p.dir)

	p.mustRun("cp", "web:/root/note", "note")
	p.mustRun("cp", "web:/data/v", "v")
	for name, want := range map[string]string{"note": "in-layer\n", "v": "in-volume\n"} {
		if data, _ := os.ReadFile(filepath.Join(p.dir, name)); string(data) != want {
			t.Errorf("from the stopped container: %s = %q, want %q", name, data, want)
		}
	}
	p.mustRun("cp", "conf", "web:/root/conf")
	p.mustRun("cp", "conf/run.sh", "web:/data/")
	if r := p.run("cp", "web:/nope", "x"); r.code == 0 || !strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("stopped, missing path: exit %d, %q", r.code, r.stderr)
	}
	if r := p.run("cp", "conf/run.sh", "web:/ro/"); r.code == 0 || !strings.Contains(r.stderr, "read-only file system") {
		t.Errorf("stopped, cp into a :ro mount: exit %d, %q", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(filepath.Join(p.dir, "rodir")); len(entries) != 0 {
		t.Errorf("the :ro bind source got %d entries", len(entries))
	}
	// Nothing of the temporary mount is left behind.
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), "stack-cp-") {
		t.Errorf("a stack-cp- mount is left:\n%s", grepLines(string(mounts), "stack-cp-"))
	}
	p.mustRun("start", "web")
	if got := p.sh(web, "cat /root/conf/sub/deep.txt /data/run.sh"); got != "content of conf/sub/deep.txt\ncontent of conf/run.sh" {
		t.Errorf("after start: %q", got)
	}

	// A container that exited by itself (its task not deleted yet) too.
	p.mustRun("up", "-d", "once")
	waitFor(t, func() bool { return p.container("once").Status == engine.StatusExited })
	p.mustRun("cp", "once:/made", "made")
	p.mustRun("cp", "conf/run.sh", "once:/")
	if data, _ := os.ReadFile(filepath.Join(p.dir, "made")); string(data) != "made\n" {
		t.Errorf("from the exited container: %q", data)
	}
	p.mustRun("cp", "once:/run.sh", "run-back")
	if data, _ := os.ReadFile(filepath.Join(p.dir, "run-back")); string(data) != "content of conf/run.sh\n" {
		t.Errorf("copied into the exited container and back: %q", data)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), "stack-cp-") {
		t.Errorf("a stack-cp- mount is left:\n%s", grepLines(string(mounts), "stack-cp-"))
	}
}

// A symlink in the container is resolved in the container's root: one
// pointing at a host path reads (or writes) the container's file at that
// path, never the host's.
func TestCpSymlinksResolveInsideTheContainer(t *testing.T) {
	p := newProjectEnv(t, cpProject)
	p.mustRun("up", "-d", "web")
	web := p.name("web", 1)
	hostDir := t.TempDir()
	secret := filepath.Join(hostDir, "host-secret")
	if err := os.WriteFile(secret, []byte("HOST SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.sh(web, "ln -s "+secret+" /abs && ln -s ../../../../../../.."+secret+" /tmp/rel && ln -s /etc/hostname /tmp/hn && ln -s "+hostDir+" /escape")

	// The target does not exist in the container: not found, and the host's
	// file is not read.
	for _, src := range []string{"web:/abs", "web:/tmp/rel"} {
		r := p.run("cp", "-L", src, "got")
		if r.code == 0 || !strings.Contains(r.stderr, "no such file or directory") {
			t.Errorf("cp -L %s: exit %d, %q; want not found", src, r.code, r.stderr)
		}
		if data, err := os.ReadFile(filepath.Join(p.dir, "got")); err == nil {
			t.Fatalf("cp -L %s read %q from the host", src, data)
		}
	}
	// Without -L the link itself is copied.
	p.mustRun("cp", "web:/abs", "link")
	if target, err := os.Readlink(filepath.Join(p.dir, "link")); err != nil || target != secret {
		t.Errorf("cp web:/abs: %q, %v; want the symlink", target, err)
	}
	// /etc/hostname through a link is the container's.
	p.mustRun("cp", "-L", "web:/tmp/hn", "hn")
	hostname, _ := os.ReadFile("/etc/hostname")
	got, _ := os.ReadFile(filepath.Join(p.dir, "hn"))
	if want := p.sh(web, "cat /etc/hostname") + "\n"; string(got) != want || string(got) == string(hostname) {
		t.Errorf("cp -L web:/tmp/hn = %q, want the container's hostname %q (host's is %q)", got, want, hostname)
	}
	// Once the container has its own file there, that one is read.
	p.sh(web, "mkdir -p "+hostDir+" && echo container-file > "+secret)
	p.mustRun("cp", "-L", "web:/abs", "got")
	if data, _ := os.ReadFile(filepath.Join(p.dir, "got")); string(data) != "container-file\n" {
		t.Errorf("cp -L web:/abs = %q, want the container's file", data)
	}
	// Copying in through /escape writes the container's directory, not the host's.
	if err := os.WriteFile(filepath.Join(p.dir, "drop"), []byte("dropped\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.mustRun("cp", "drop", "web:/escape/")
	if _, err := os.Stat(filepath.Join(hostDir, "drop")); err == nil {
		t.Fatal("cp drop web:/escape/ wrote into the host's directory")
	}
	if got := p.sh(web, "cat "+hostDir+"/drop"); got != "dropped" {
		t.Errorf("in the container: %q", got)
	}
	if data, _ := os.ReadFile(secret); string(data) != "HOST SECRET\n" {
		t.Errorf("the host file changed: %q", data)
	}
}
