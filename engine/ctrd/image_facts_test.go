package ctrd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The image configuration travels inside its descriptor, so applying it to
// a container's spec reads no content: specInput.configImage has no
// content store to read from here, and the spec still gets the image's
// environment, command and working directory.
func TestTheImageConfigurationIsAppliedWithoutReadingContent(t *testing.T) {
	blob, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config: ocispec.ImageConfig{
			Env: []string{"PATH=/bin", "GREETING=hi"}, Entrypoint: []string{"/bin/serve"}, Cmd: []string{"--port", "80"}, WorkingDir: "/srv",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	in := specInput{imageFacts: imageFacts{configDesc: ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(blob), Size: int64(len(blob)), Data: blob,
	}}}
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "group"), []byte("root:x:0:\nwheel:x:10:root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &oci.Spec{Process: &specs.Process{}, Root: &specs.Root{Path: rootfs}, Linux: &specs.Linux{}}
	if err := oci.WithImageConfig(in.configImage())(context.Background(), nil, &containers.Container{}, s); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/bin/serve", "--port", "80"}; !slices.Equal(s.Process.Args, want) {
		t.Errorf("args %q, want %q", s.Process.Args, want)
	}
	if !slices.Contains(s.Process.Env, "GREETING=hi") || s.Process.Cwd != "/srv" {
		t.Errorf("env %q cwd %q, want the image's", s.Process.Env, s.Process.Cwd)
	}
	if !slices.Contains(s.Process.User.AdditionalGids, 10) {
		t.Errorf("additional gids %v, want root's groups from the rootfs (10)", s.Process.User.AdditionalGids)
	}
}
