package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/stackdev/stack/engine"
)

// startRegistry runs Debian's docker-registry on a free loopback port with
// its own configuration and storage, stopped when the test ends. It returns
// host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("docker-registry is not installed (apt-get install docker-registry)")
		}
		t.Skip("docker-registry is not installed (apt-get install docker-registry)")
	}
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	writeFile(t, filepath.Join(dir, "config.yml"), []byte(config))
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	waitHTTP(t, "http://"+addr+"/v2/", filepath.Join(dir, "registry.log"))
	return addr
}

// freeLoopbackAddr finds a free port on 127.0.0.1.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitHTTP polls url until it answers 200, for at most 10 seconds.
func waitHTTP(t *testing.T, url, logPath string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(logPath)
	t.Fatalf("registry at %s did not come up:\n%s", url, log)
}

// newRegistryEnv is an image env whose registry credentials come from an
// empty docker config directory, never the user's.
func newRegistryEnv(t *testing.T) *stackEnv {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("STACK_INSECURE_REGISTRIES", "")
	t.Setenv("STACK_REGISTRY_TIMEOUT", "")
	return newImageEnv(t)
}

// sibling is another namespace and state directory for the same test: a
// fresh image store to pull into.
func (e *stackEnv) sibling(suffix string) *stackEnv {
	e.t.Helper()
	s := &stackEnv{t: e.t, namespace: e.namespace + "-" + suffix, stateDir: e.t.TempDir(), dir: e.dir}
	cleanupNamespace(e.t, s.namespace)
	return s
}

var progressDone = regexp.MustCompile(`(?m)^[0-9a-f]{12}: (done|exists) \(`)

func TestRegistryPushThenPullByTagAndByDigest(t *testing.T) {
	e := newRegistryEnv(t)
	reg := startRegistry(t)
	e.loadExampleImages()
	ref := reg + "/h1/busybox:1"
	e.mustRun("image", "tag", "busybox", ref)
	localID := imageIDsByName(t, e)["docker.io/library/busybox:latest"]

	if out := e.mustRun("push", ref); out != ref+": digest: sha256:"+localID+"\n" {
		t.Fatalf("push printed %q", out)
	}

	byTag := e.sibling("tag")
	r := byTag.run("pull", ref)
	if r.code != 0 || r.stdout != "Digest: sha256:"+localID+"\n"+ref+"\n" {
		t.Fatalf("pull by tag: exit %d\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if !progressDone.MatchString(r.stderr) {
		t.Fatalf("pull showed no per-layer progress on stderr:\n%s", r.stderr)
	}
	wantImages(t, byTag, ref)
	if got := runImage(t, byTag, ref, "echo", "pulled by tag"); got != "pulled by tag\n" {
		t.Fatalf("container from the pulled image printed %q", got)
	}

	byDigest := e.sibling("digest")
	digestRef := reg + "/h1/busybox@sha256:" + localID
	r = byDigest.run("image", "pull", "-q", digestRef)
	if r.code != 0 || r.stdout != digestRef+"\n" || r.stderr != "" {
		t.Fatalf("pull -q by digest: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	wantImages(t, byDigest, digestRef)
	if got := runImage(t, byDigest, digestRef, "echo", "pulled by digest"); got != "pulled by digest\n" {
		t.Fatalf("container from the image pulled by digest printed %q", got)
	}
}

func TestRegistryPushSendsTheSameImageToEveryRepository(t *testing.T) {
	e := newRegistryEnv(t)
	reg := startRegistry(t)
	e.loadExampleImages()
	for _, repo := range []string{"team-a/hello", "team-b/hello"} {
		e.mustRun("image", "tag", "hello", reg+"/"+repo+":v1")
		e.mustRun("image", "push", "-q", reg+"/"+repo+":v1")
	}
	var catalog struct{ Repositories []string }
	getJSON(t, "http://"+reg+"/v2/_catalog", &catalog)
	if strings.Join(catalog.Repositories, " ") != "team-a/hello team-b/hello" {
		t.Fatalf("registry catalog: %v", catalog.Repositories)
	}
	pulled := e.sibling("b")
	pulled.mustRun("pull", "-q", reg+"/team-b/hello:v1")
	wantImages(t, pulled, reg+"/team-b/hello:v1")
}

func TestRegistryCredentialsComeFromDockerConfig(t *testing.T) {
	e := newRegistryEnv(t)
	proxy := basicAuthProxy(t, startRegistry(t), "h1user", "s3cret:with:colons")
	e.loadExampleImages()
	ref := proxy + "/private/busybox:1"
	e.mustRun("image", "tag", "busybox", ref)

	r := e.run("push", ref)
	wantFailure(t, r, "push "+ref+": registry "+proxy+": ")
	if !strings.Contains(r.stderr, "credentials") {
		t.Fatalf("an unauthorized push does not point at credentials:\n%s", r.stderr)
	}

	writeDockerConfig(t, map[string]any{"https://" + proxy + "/v1/": map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte("h1user:s3cret:with:colons")),
	}})
	e.mustRun("push", "-q", ref)

	writeDockerConfig(t, map[string]any{proxy: map[string]string{"username": "h1user", "password": "s3cret:with:colons"}})
	pulled := e.sibling("pull")
	pulled.mustRun("pull", "-q", ref)
	wantImages(t, pulled, ref)

	writeDockerConfig(t, map[string]any{proxy: map[string]string{"username": "h1user", "password": "wrong"}})
	denied := e.sibling("denied")
	wantFailure(t, denied.run("pull", ref), "pull "+ref+": registry "+proxy+": ")
	wantNothingStored(t, denied)
}

func TestRegistryThatRefusesFailsCleanly(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusUnauthorized} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := newRegistryEnv(t)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "refused by the test", status)
			}))
			t.Cleanup(srv.Close)
			host := strings.TrimPrefix(srv.URL, "http://")
			ref := host + "/h1/refused:1"
			r := e.run("pull", ref)
			wantFailure(t, r, "pull "+ref+": registry "+host+": ")
			hint := map[int]string{500: "the registry failed on its side", 401: "log in with docker login or add them to ~/.docker/config.json"}[status]
			if !strings.Contains(r.stderr, fmt.Sprint(status)) || !strings.Contains(r.stderr, hint) {
				t.Fatalf("the error does not give the registry's answer %d and the hint %q:\n%s", status, hint, r.stderr)
			}
			wantNothingStored(t, e)

			e.mustRun("image", "load", "-i", filepath.Join(env.imagesDir, "busybox.oci.tar"))
			e.mustRun("image", "tag", "busybox", ref)
			wantFailure(t, e.run("push", ref), "push "+ref+": registry "+host+": ")
		})
	}
}

func TestRegistryThatTimesOutFailsCleanly(t *testing.T) {
	e := newRegistryEnv(t)
	host := silentListener(t)
	ref := host + "/h1/slow:1"

	start := time.Now()
	r := e.run("pull", "--registry-timeout", "500ms", ref)
	wantFailure(t, r, "pull "+ref+": registry "+host+": ")
	if !strings.Contains(r.stderr, "did not answer in time") {
		t.Fatalf("the error does not say the registry timed out:\n%s", r.stderr)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("a 500ms registry timeout took %s to fail", took)
	}
	wantNothingStored(t, e)

	t.Setenv("STACK_REGISTRY_TIMEOUT", "300ms")
	wantFailure(t, e.run("pull", ref), "did not answer in time; raise STACK_REGISTRY_TIMEOUT")
	t.Setenv("STACK_REGISTRY_TIMEOUT", "soon")
	wantFailure(t, e.run("pull", ref), `STACK_REGISTRY_TIMEOUT="soon" is not a positive duration`)
	wantNothingStored(t, e)
}

func TestPullOfAMissingTagOrUnreachableRegistryFailsCleanly(t *testing.T) {
	e := newRegistryEnv(t)
	reg := startRegistry(t)
	ref := reg + "/h1/nothere:1"
	wantFailure(t, e.run("pull", ref), "pull "+ref+": registry "+reg+": ")
	wantNothingStored(t, e)

	down := freeLoopbackAddr(t)
	wantFailure(t, e.run("pull", down+"/h1/x:1"), "(nothing listens there: is the registry running?)")
	wantNothingStored(t, e)

	wantFailure(t, e.run("push", reg+"/h1/nosuch:1"), "push "+reg+"/h1/nosuch:1: no such image")
}

func TestPullImageFollowsThePullPolicy(t *testing.T) {
	e := newRegistryEnv(t)
	reg := startRegistry(t)
	e.loadExampleImages()
	ref := reg + "/h1/policy:1"
	e.mustRun("image", "tag", "busybox", ref)
	e.mustRun("push", "-q", ref)
	want := "sha256:" + imageIDsByName(t, e)[ref]
	ctx := context.Background()

	fresh := e.sibling("fresh")
	c := ctrdClient(t, fresh)
	if _, err := c.PullImage(ctx, ref, engine.PullOptions{Policy: engine.PullNever}); !errdefs.IsNotFound(err) {
		t.Fatalf("policy never on a missing image: %v, want not found", err)
	}
	var mu sync.Mutex
	var events []engine.PullProgress
	got, err := c.PullImage(ctx, ref, engine.PullOptions{Policy: engine.PullMissing, Progress: func(p engine.PullProgress) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, p)
	}})
	if err != nil || got != want {
		t.Fatalf("policy missing pulled %q, %v; want %s", got, err, want)
	}
	mu.Lock()
	last := events[len(events)-1]
	mu.Unlock()
	if last.Ref != ref || last.Status != "done" || last.Done != last.Total || last.Total == 0 {
		t.Fatalf("last progress event %+v", last)
	}

	offline := e.sibling("offline")
	offline.mustRun("image", "load", "-i", filepath.Join(env.imagesDir, "busybox.oci.tar"))
	downRef := freeLoopbackAddr(t) + "/h1/policy:1"
	offline.mustRun("image", "tag", "busybox", downRef)
	oc := ctrdClient(t, offline)
	for _, policy := range []engine.PullPolicy{engine.PullMissing, engine.PullNever} {
		if got, err := oc.PullImage(ctx, downRef, engine.PullOptions{Policy: policy}); err != nil || got != want {
			t.Fatalf("policy %s on a present image: %q, %v; want %s without the registry", policy, got, err, want)
		}
	}
	if _, err := oc.PullImage(ctx, downRef, engine.PullOptions{Policy: engine.PullAlways}); err == nil {
		t.Fatal("policy always did not contact the (unreachable) registry")
	}
	wantImages(t, offline, "docker.io/library/busybox:latest", downRef)
}

// basicAuthProxy fronts the registry at upstream with HTTP basic auth, the
// way a private registry asks for docker login. It returns its host:port.
func basicAuthProxy(t *testing.T, upstream, user, password string) string {
	t.Helper()
	target, _ := url.Parse("http://" + upstream)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="h1 test registry"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// silentListener accepts connections on loopback and never answers.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// writeDockerConfig writes config.json with the given auths into
// $DOCKER_CONFIG.
func writeDockerConfig(t *testing.T, auths map[string]any) {
	t.Helper()
	data, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json"), data)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, data)
	}
}

func TestPullResolvesAMultiArchIndexToThisHost(t *testing.T) {
	e := newRegistryEnv(t)
	reg := startRegistry(t)
	e.loadExampleImages()
	ref := reg + "/h1/multi:1"
	foreign := writeMultiArchIndex(t, e, "docker.io/library/busybox:latest", ref)
	e.mustRun("push", "-q", ref)

	pulled := e.sibling("pull")
	pulled.mustRun("pull", "-q", ref)
	if got := runImage(t, pulled, ref, "uname", "-m"); got == "" {
		t.Fatal("the host's image from the index did not run")
	}
	client, ctx := containerdClient(t, pulled)
	if _, err := client.ContentStore().Info(ctx, foreign); !errdefs.IsNotFound(err) {
		t.Fatalf("the other platform's manifest was fetched too: %v", err)
	}
}

// writeMultiArchIndex makes image name an OCI index of the host image src
// and a manifest for another architecture (same layers), and returns that
// manifest's digest.
func writeMultiArchIndex(t *testing.T, e *stackEnv, src, name string) digest.Digest {
	t.Helper()
	client, ctx := containerdClient(t, e)
	ctx, done, err := client.WithLease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer done(ctx)
	cs := client.ContentStore()
	img, err := client.GetImage(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	var hostManifest ocispec.Manifest
	readJSONBlob(t, ctx, cs, img.Target(), &hostManifest)
	var config ocispec.Image
	readJSONBlob(t, ctx, cs, hostManifest.Config, &config)
	config.Architecture = foreignArch()
	foreignManifest := hostManifest
	foreignManifest.Config = writeJSONBlob(t, ctx, cs, ocispec.MediaTypeImageConfig, config, nil)
	labels := map[string]string{"containerd.io/gc.ref.content.config": foreignManifest.Config.Digest.String()}
	for i, l := range foreignManifest.Layers {
		labels[fmt.Sprintf("containerd.io/gc.ref.content.l.%d", i)] = l.Digest.String()
	}
	foreignDesc := writeJSONBlob(t, ctx, cs, ocispec.MediaTypeImageManifest, foreignManifest, labels)
	foreignDesc.Platform = &ocispec.Platform{OS: "linux", Architecture: foreignArch()}
	hostDesc := img.Target()
	hostDesc.Platform = &ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{hostDesc, foreignDesc}}
	indexDesc := writeJSONBlob(t, ctx, cs, ocispec.MediaTypeImageIndex, index, map[string]string{
		"containerd.io/gc.ref.content.m.0": hostDesc.Digest.String(),
		"containerd.io/gc.ref.content.m.1": foreignDesc.Digest.String(),
	})
	if _, err := client.ImageService().Create(ctx, images.Image{Name: name, Target: indexDesc}); err != nil {
		t.Fatal(err)
	}
	return foreignDesc.Digest
}

func readJSONBlob(t *testing.T, ctx context.Context, cs content.Store, desc ocispec.Descriptor, v any) {
	t.Helper()
	data, err := content.ReadBlob(ctx, cs, desc)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func writeJSONBlob(t *testing.T, ctx context.Context, cs content.Store, mediaType string, v any, labels map[string]string) ocispec.Descriptor {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := content.WriteBlob(ctx, cs, "h1-test-"+desc.Digest.String(), bytes.NewReader(data), desc, content.WithLabels(labels)); err != nil {
		t.Fatal(err)
	}
	return desc
}
