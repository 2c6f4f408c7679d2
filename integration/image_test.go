package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/stackdev/stack/engine/ctrd"
)

// newImageEnv is newStackEnv plus removal of what the test put in
// containerd.
func newImageEnv(t *testing.T) *stackEnv {
	t.Helper()
	e := newStackEnv(t)
	cleanupNamespace(t, e.namespace)
	return e
}

func TestImageLoadExampleArchivesNamesEachImage(t *testing.T) {
	e := newImageEnv(t)
	out := e.mustRun("image", "load", "-i", filepath.Join(env.imagesDir, "busybox.oci.tar"))
	if out != "Loaded image: busybox:latest\n" {
		t.Fatalf("load busybox printed %q", out)
	}
	out = e.mustRun("image", "load", "-i", filepath.Join(env.imagesDir, "hello.oci.tar"))
	if out != "Loaded image: hello:latest\n" {
		t.Fatalf("load hello printed %q", out)
	}
	wantImages(t, e, "docker.io/library/busybox:latest", "docker.io/library/hello:latest")
	if got := runImage(t, e, "docker.io/library/busybox:latest", "echo", "loaded and unpacked"); got != "loaded and unpacked\n" {
		t.Fatalf("container from the loaded image printed %q", got)
	}
}

func TestImageLoadReadsGzipFromStdin(t *testing.T) {
	e := newImageEnv(t)
	archive := gzipBytes(t, readFile(t, filepath.Join(env.imagesDir, "busybox.oci.tar")))
	r := e.runIn(e.dir, archive, "image", "load")
	if r.code != 0 || r.stdout != "Loaded image: busybox:latest\n" {
		t.Fatalf("load from stdin: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	wantImages(t, e, "docker.io/library/busybox:latest")
}

func TestImageLoadReadsDockerSaveArchives(t *testing.T) {
	e := newImageEnv(t)
	archive := dockerSaveArchive(t, busyboxRootFS(t), "h1test/saved:v1")
	path := filepath.Join(e.dir, "saved.tar.gz")
	writeFile(t, path, gzipBytes(t, archive))
	if out := e.mustRun("image", "load", "-i", path); out != "Loaded image: h1test/saved:v1\n" {
		t.Fatalf("load docker-save archive printed %q", out)
	}
	wantImages(t, e, "docker.io/h1test/saved:v1")
	if got := runImage(t, e, "docker.io/h1test/saved:v1", "sh", "-c", "echo from docker save"); got != "from docker save\n" {
		t.Fatalf("container printed %q", got)
	}
}

func TestImageLoadOfAnUnnamedOCIArchiveGivesTheImageID(t *testing.T) {
	e := newImageEnv(t)
	archive := withIndexAnnotations(t, readFile(t, filepath.Join(env.imagesDir, "busybox.oci.tar")),
		map[string]string{"org.opencontainers.image.ref.name": "latest"})
	path := filepath.Join(e.dir, "unnamed.tar")
	writeFile(t, path, archive)
	out := e.mustRun("image", "load", "-i", path)
	id, ok := strings.CutPrefix(out, "Loaded image ID: sha256:")
	if !ok || len(id) != 65 {
		t.Fatalf("load of an unnamed archive printed %q", out)
	}
	id = strings.TrimSpace(id)
	wantImages(t, e, "sha256:"+id)
	if row := strings.Fields(strings.Split(e.mustRun("image", "ls"), "\n")[1]); row[0] != "<none>" || row[1] != "<none>" || row[2] != id[:12] {
		t.Fatalf("image ls row for the unnamed image: %v", row)
	}
	e.mustRun("image", "tag", id[:12], "h1test/named:1")
	if got := runImage(t, e, "docker.io/h1test/named:1", "echo", "named now"); got != "named now\n" {
		t.Fatalf("container printed %q", got)
	}
}

func TestImageSaveWritesAnArchiveThatLoadsBack(t *testing.T) {
	e := newImageEnv(t)
	e.loadExampleImages()
	before := imageIDs(t, e)
	out := filepath.Join(e.dir, "both.tar")
	e.mustRun("image", "save", "busybox", "docker.io/library/hello:latest", "-o", out)
	names := tarNames(t, readFile(t, out))
	for _, want := range []string{"oci-layout", "index.json", "manifest.json"} {
		if !slices.Contains(names, want) {
			t.Fatalf("saved archive lacks %s; it has %v", want, names)
		}
	}
	if names := tarNames(t, []byte(e.mustRun("image", "save", "hello"))); !slices.Contains(names, "index.json") {
		t.Fatalf("save to stdout wrote %v", names)
	}
	e.mustRun("image", "rm", "busybox", "hello")
	wantImages(t, e)
	got := e.mustRun("image", "load", "-i", out)
	if got != "Loaded image: busybox:latest\nLoaded image: hello:latest\n" && got != "Loaded image: hello:latest\nLoaded image: busybox:latest\n" {
		t.Fatalf("load of the saved archive printed %q", got)
	}
	if after := imageIDs(t, e); after != before {
		t.Fatalf("image IDs changed through save and load:\nbefore %s\nafter  %s", before, after)
	}
}

func TestImageSaveOfAMissingImageFailsAndWritesNothing(t *testing.T) {
	e := newImageEnv(t)
	out := filepath.Join(e.dir, "none.tar")
	r := e.run("image", "save", "nosuch:1", "-o", out)
	wantFailure(t, r, "save nosuch:1: no such image: nosuch:1")
	if entries, _ := os.ReadDir(e.dir); len(entries) != 0 {
		t.Fatalf("a failed save left files: %v", entries)
	}
}

func TestImageLsShowsTableJSONAndIDs(t *testing.T) {
	e := newImageEnv(t)
	e.loadExampleImages()
	table := e.mustRun("image", "ls")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "REPOSITORY TAG IMAGE ID CREATED SIZE" {
		t.Fatalf("image ls table:\n%s", table)
	}
	if f := strings.Fields(lines[1]); f[0] != "busybox" || f[1] != "latest" || len(f[2]) != 12 {
		t.Fatalf("first row %q: want busybox latest <12-hex id> ...", lines[1])
	}
	var rows []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(e.mustRun("image", "ls", "--format", "json")), "\n") {
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("image ls --format json line %q: %v", line, err)
		}
		rows = append(rows, row)
	}
	if len(rows) != 2 || rows[1]["Repository"] != "hello" || rows[1]["Tag"] != "latest" || rows[1]["SizeBytes"].(float64) <= 0 {
		t.Fatalf("image ls --format json rows: %v", rows)
	}
	ids := strings.Fields(e.mustRun("image", "ls", "-q"))
	if len(ids) != 2 || !strings.HasPrefix(rows[0]["Digest"].(string), "sha256:"+ids[0]) {
		t.Fatalf("image ls -q printed %v; digests %v, %v", ids, rows[0]["Digest"], rows[1]["Digest"])
	}
	if only := e.mustRun("image", "ls", "hello"); strings.Count(only, "\n") != 2 || !strings.Contains(only, "\nhello ") {
		t.Fatalf("image ls hello:\n%s", only)
	}
	wantFailure(t, e.run("image", "ls", "--format", "yaml"), `--format "yaml": use table or json`)
}

func TestImageTagAddsANameAndRmRemovesOnlyIt(t *testing.T) {
	e := newImageEnv(t)
	e.loadExampleImages()
	e.mustRun("image", "tag", "busybox", "registry.example:5000/tools/bb:1.0")
	wantImages(t, e, "docker.io/library/busybox:latest", "docker.io/library/hello:latest", "registry.example:5000/tools/bb:1.0")
	ids := imageIDsByName(t, e)
	if ids["registry.example:5000/tools/bb:1.0"] != ids["docker.io/library/busybox:latest"] {
		t.Fatalf("the tag points elsewhere: %v", ids)
	}
	if out := e.mustRun("image", "rm", "busybox:latest"); out != "Untagged: busybox:latest\n" {
		t.Fatalf("rm printed %q", out)
	}
	wantImages(t, e, "docker.io/library/hello:latest", "registry.example:5000/tools/bb:1.0")
	if got := runImage(t, e, "registry.example:5000/tools/bb:1.0", "echo", "still here"); got != "still here\n" {
		t.Fatalf("the remaining tag does not run: %q", got)
	}
	wantFailure(t, e.run("image", "rm", "nosuch"), "remove image nosuch: no such image: nosuch")
	wantFailure(t, e.run("image", "tag", "nosuch", "other"), "tag nosuch: no such image: nosuch")
}

func TestImageRmByIDRemovesEveryName(t *testing.T) {
	e := newImageEnv(t)
	e.loadExampleImages()
	e.mustRun("image", "tag", "hello", "hello:copy")
	id := imageIDsByName(t, e)["docker.io/library/hello:latest"][:12]
	out := e.mustRun("image", "rm", id)
	if out != "Untagged: hello:copy\nUntagged: hello:latest\n" {
		t.Fatalf("rm by ID printed %q", out)
	}
	wantImages(t, e, "docker.io/library/busybox:latest")
}

func TestImageImportBuildsARunnableImageWithChanges(t *testing.T) {
	e := newImageEnv(t)
	path := filepath.Join(e.dir, "rootfs.tar")
	writeFile(t, path, busyboxRootFS(t))
	out := e.mustRun("image", "import", path, "h1test/imported:1",
		"--change", `ENTRYPOINT ["/bin/sh", "-c"]`,
		"--change", `CMD ["echo $GREETING from $(pwd) as $(id -u)"]`,
		"--change", `ENV GREETING="hello world" OTHER=x`,
		"--change", "WORKDIR /srv/app",
		"--change", "USER 1000",
		"--change", "EXPOSE 8080 53/udp",
		"--change", `LABEL org.example.team="images team"`,
		"-m", "imported by the test")
	if !strings.HasPrefix(out, "sha256:") {
		t.Fatalf("import printed %q, want the image digest", out)
	}
	cfg := imageConfig(t, e, "docker.io/h1test/imported:1")
	if cfg.Config.WorkingDir != "/srv/app" || cfg.Config.User != "1000" || cfg.Config.Labels["org.example.team"] != "images team" {
		t.Fatalf("config: %+v", cfg.Config)
	}
	if _, ok := cfg.Config.ExposedPorts["53/udp"]; !ok || len(cfg.Config.ExposedPorts) != 2 {
		t.Fatalf("exposed ports: %v", cfg.Config.ExposedPorts)
	}
	if len(cfg.History) != 1 || cfg.History[0].Comment != "imported by the test" {
		t.Fatalf("history: %+v", cfg.History)
	}
	if got := runImage(t, e, "docker.io/h1test/imported:1"); got != "hello world from /srv/app as 1000\n" {
		t.Fatalf("the imported image's default command printed %q", got)
	}
}

func TestImageImportReadsGzipFromStdin(t *testing.T) {
	e := newImageEnv(t)
	r := e.runIn(e.dir, gzipBytes(t, busyboxRootFS(t)), "image", "import", "-", "h1test/stdin")
	if r.code != 0 {
		t.Fatalf("import -: exit %d: %s", r.code, r.stderr)
	}
	wantImages(t, e, "docker.io/h1test/stdin:latest")
	cfg := imageConfig(t, e, "docker.io/h1test/stdin:latest")
	if cfg.History[0].Comment != "Imported from stdin" {
		t.Fatalf("history comment %q", cfg.History[0].Comment)
	}
	if got := runImage(t, e, "docker.io/h1test/stdin:latest", "sh", "-c", "echo $PATH"); got != "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n" {
		t.Fatalf("PATH in the imported image: %q", got)
	}
}

// Bad input: each case fails with one clear message and leaves no image.

func TestImageLoadRejectsBadArchives(t *testing.T) {
	busybox := readFile(t, filepath.Join(env.imagesDir, "busybox.oci.tar"))
	busyboxGz := gzipBytes(t, busybox)
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"corrupt", "the archive is corrupt, not a tar file", bytes.Repeat([]byte("this is not an image archive\n"), 100)},
		{"truncated", "the archive is truncated", busybox[:len(busybox)/2+100]},
		{"truncated gzip", "the archive is truncated", busyboxGz[:len(busyboxGz)/2]},
		{"other platform", "it holds no image for this host (linux/" + runtime.GOARCH,
			dockerSaveArchiveFor(t, foreignArch(), busyboxRootFS(t), "h1test/foreign:1")},
		{"not an image", "not an image archive: it has neither an OCI layout (oci-layout, index.json) nor a docker save manifest.json",
			tarBytes(t, tarEntry{name: "notes.txt", body: "just a file"}, tarEntry{name: "dir/", dir: true})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newImageEnv(t)
			path := filepath.Join(e.dir, "bad.tar")
			writeFile(t, path, tc.data)
			r := e.run("image", "load", "-i", path)
			wantFailure(t, r, "load image archive: "+tc.want)
			if !strings.Contains(r.stderr, path) {
				t.Fatalf("the error does not name the file %s: %s", path, r.stderr)
			}
			wantNothingStored(t, e)
		})
	}
}

func TestImageImportRejectsEscapingPathsAndBadChanges(t *testing.T) {
	good := tarEntry{name: "bin/true", body: "x", mode: 0o755}
	cases := []struct {
		name, want string
		data       []byte
		changes    []string
	}{
		{"dot-dot", `tar entry "../evil": path leaves the root filesystem`,
			tarBytes(t, good, tarEntry{name: "../evil", body: "x"}), nil},
		{"dot-dot after cleaning", `tar entry "etc/../../../evil": path leaves the root filesystem`,
			tarBytes(t, good, tarEntry{name: "etc/../../../evil", body: "x"}), nil},
		{"absolute", `tar entry "/etc/cron.d/evil": path leaves the root filesystem`,
			tarBytes(t, good, tarEntry{name: "/etc/cron.d/evil", body: "x"}), nil},
		{"hard link target", `tar entry "bin/shadow": hard link target "../../etc/shadow": path leaves the root filesystem`,
			tarBytes(t, good, tarEntry{name: "bin/shadow", link: "../../etc/shadow"}), nil},
		{"not a tar", "not a tar archive (plain or gzip)", bytes.Repeat([]byte("garbage "), 200), nil},
		{"truncated", "the tarball is truncated", gzipBytes(t, busyboxRootFS(t))[:20000], nil},
		{"unknown change", `unknown --change instruction "FROM" in "FROM busybox" (supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)`,
			tarBytes(t, good), []string{"CMD [\"sh\"]", "FROM busybox"}},
		{"bad exec form", `--change "CMD [sh": exec form must be a JSON array of strings`, tarBytes(t, good), []string{"CMD [sh"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newImageEnv(t)
			path := filepath.Join(e.dir, "rootfs.tar")
			writeFile(t, path, tc.data)
			args := []string{"image", "import", path, "h1test/bad:1"}
			for _, c := range tc.changes {
				args = append(args, "--change", c)
			}
			wantFailure(t, e.run(args...), tc.want)
			wantNothingStored(t, e)
		})
	}
}

// wantFailure checks a non-zero exit and exactly one error line, the last
// on stderr, containing want (progress lines may come before it).
func wantFailure(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0, want failure %q\nstdout: %s", want, r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "error: ") || !strings.Contains(last, want) {
		t.Fatalf("the last stderr line is not an error saying %q:\n%s", want, r.stderr)
	}
	errors := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "error") {
			errors++
		}
	}
	if errors != 1 {
		t.Fatalf("want one error line, stderr has %d:\n%s", errors, r.stderr)
	}
}

// wantImages checks the namespace's image store holds exactly names, asking
// containerd directly rather than trusting stack's own listing.
func wantImages(t *testing.T, e *stackEnv, names ...string) {
	t.Helper()
	got := sortedKeys(imageIDsByName(t, e))
	sort.Strings(names)
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Fatalf("image store holds %v, want %v", got, names)
	}
}

// wantNothingStored checks a failed command left no image, no blob and no
// unfinished upload in the namespace.
func wantNothingStored(t *testing.T, e *stackEnv) {
	t.Helper()
	wantImages(t, e)
	client, ctx := containerdClient(t, e)
	cs := client.ContentStore()
	var blobs []string
	if err := cs.Walk(ctx, func(info content.Info) error {
		blobs = append(blobs, info.Digest.String())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ingests, err := cs.ListStatuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 0 || len(ingests) != 0 {
		t.Fatalf("left in the content store: blobs %v, ingests %v", blobs, ingests)
	}
}

func imageIDsByName(t *testing.T, e *stackEnv) map[string]string {
	t.Helper()
	c := ctrdClient(t, e)
	ids, err := c.ImageDigests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for name, dgst := range ids {
		ids[name] = strings.TrimPrefix(dgst, "sha256:")
	}
	return ids
}

func imageIDs(t *testing.T, e *stackEnv) string {
	ids := imageIDsByName(t, e)
	var out []string
	for _, name := range sortedKeys(ids) {
		out = append(out, name+"="+ids[name])
	}
	return strings.Join(out, " ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ctrdClient(t *testing.T, e *stackEnv) *ctrd.Client {
	t.Helper()
	c, err := ctrd.New(context.Background(), ctrd.Options{Address: env.socket, Namespace: e.namespace, StateDir: e.stateDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func imageConfig(t *testing.T, e *stackEnv, name string) ocispec.Image {
	t.Helper()
	client, ctx := containerdClient(t, e)
	img, err := client.GetImage(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := img.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func containerdClient(t *testing.T, e *stackEnv) (*containerd.Client, context.Context) {
	t.Helper()
	client, err := containerd.New(env.socket, containerd.WithDefaultNamespace(e.namespace))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client, namespaces.WithNamespace(context.Background(), e.namespace)
}

// runImage runs a container from the image with containerd directly (its
// default command when args is empty) and returns what it printed.
func runImage(t *testing.T, e *stackEnv, name string, args ...string) string {
	t.Helper()
	client, ctx := containerdClient(t, e)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	img, err := client.GetImage(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	specOpts := []oci.SpecOpts{oci.WithImageConfig(img)}
	if len(args) > 0 {
		specOpts = append(specOpts, oci.WithProcessArgs(args...))
	}
	id := fmt.Sprintf("h1run-%d", time.Now().UnixNano())
	ctr, err := client.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithSnapshotter(ctrdClient(t, e).Snapshotter(ctx)),
		containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(specOpts...))
	if err != nil {
		t.Fatalf("create container from %s: %v", name, err)
	}
	defer ctr.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup)
	var stdout, stderr bytes.Buffer
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr), cio.WithFIFODir(t.TempDir())))
	if err != nil {
		t.Fatalf("create task from %s: %v", name, err)
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatalf("start task from %s: %v", name, err)
	}
	st := <-exited
	// Delete cancels the copying of output, so let it drain first.
	drained := make(chan struct{})
	go func() { task.IO().Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
	}
	if _, err := task.Delete(context.WithoutCancel(ctx)); err != nil {
		t.Fatal(err)
	}
	if st.ExitCode() != 0 {
		t.Fatalf("container from %s exited %d: %s", name, st.ExitCode(), stderr.String())
	}
	return stdout.String()
}

// tarEntry is one file, directory, symlink or hard link of a test tarball.
type tarEntry struct {
	name, body string
	mode       int64
	dir        bool
	symlink    string
	link       string // hard link target
}

func tarBytes(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, en := range entries {
		hdr := &tar.Header{Name: en.name, Mode: en.mode, Size: int64(len(en.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		switch {
		case en.dir:
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		case en.symlink != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, en.symlink, 0o777
		case en.link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, en.link, 0
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(en.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// busyboxRootFS is a minimal root filesystem: the host's static busybox
// with the applets the tests use, /tmp, /srv and /etc/passwd.
func busyboxRootFS(t *testing.T) []byte {
	t.Helper()
	entries := []tarEntry{
		{name: "bin/", dir: true},
		{name: "bin/busybox", body: string(readFile(t, "/bin/busybox")), mode: 0o755},
		{name: "etc/", dir: true},
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\n"},
		{name: "tmp/", dir: true},
		{name: "srv/app/", dir: true},
	}
	for _, applet := range []string{"sh", "echo", "id", "pwd", "ls", "cat"} {
		entries = append(entries, tarEntry{name: "bin/" + applet, symlink: "busybox"})
	}
	return tarBytes(t, entries...)
}

// dockerSaveArchive wraps a layer in the layout docker save writes:
// manifest.json, a config named by its digest, and <id>/layer.tar.
func dockerSaveArchive(t *testing.T, layer []byte, repoTag string) []byte {
	t.Helper()
	return dockerSaveArchiveFor(t, runtime.GOARCH, layer, repoTag)
}

// foreignArch is an architecture this host cannot run.
func foreignArch() string {
	if runtime.GOARCH == "s390x" {
		return "amd64"
	}
	return "s390x"
}

func dockerSaveArchiveFor(t *testing.T, arch string, layer []byte, repoTag string) []byte {
	t.Helper()
	layerSum := sha256.Sum256(layer)
	config, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		Config:   ocispec.ImageConfig{Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(layerSum[:]))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	layerName := hex.EncodeToString(layerSum[:]) + "/layer.tar"
	manifest, _ := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string{repoTag}, "Layers": []string{layerName}}})
	return tarBytes(t,
		tarEntry{name: configName, body: string(config)},
		tarEntry{name: hex.EncodeToString(layerSum[:]) + "/", dir: true},
		tarEntry{name: layerName, body: string(layer)},
		tarEntry{name: "manifest.json", body: string(manifest)},
	)
}

// withIndexAnnotations rewrites an OCI archive's index.json so that every
// manifest carries exactly the given annotations.
func withIndexAnnotations(t *testing.T, archive []byte, annotations map[string]string) []byte {
	t.Helper()
	var entries []tarEntry
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		body, _ := io.ReadAll(tr)
		if hdr.Name == "index.json" {
			var index ocispec.Index
			if err := json.Unmarshal(body, &index); err != nil {
				t.Fatal(err)
			}
			for i := range index.Manifests {
				index.Manifests[i].Annotations = annotations
			}
			body, _ = json.Marshal(index)
		}
		entries = append(entries, tarEntry{name: hdr.Name, body: string(body), dir: hdr.Typeflag == tar.TypeDir})
	}
	return tarBytes(t, entries...)
}

func tarNames(t *testing.T, data []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hdr.Name)
	}
	return names
}

func gzipBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
