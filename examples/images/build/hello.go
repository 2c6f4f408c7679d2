package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// helloPackage is the example server's import path; go build resolves it
// from anywhere inside the module.
const helloPackage = "github.com/stackdev/stack/examples/images/hello"

// buildHello compiles the example server: static (no cgo), for the host's
// architecture, reproducible (-trimpath, no build id).
func buildHello(ctx context.Context, tmpDir string) ([]byte, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(tmpDir, "hello")
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, helloPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", helloPackage, err, msg)
	}
	return os.ReadFile(out)
}

// helloLayer holds /hello alone; the image puts it on the busybox layer.
func helloLayer(binary []byte) (layer, error) {
	return buildLayer([]entry{file("hello", 0o755, binary)})
}

// helloImage is docker.io/library/hello:latest: busybox plus /hello, so
// sh, wget and nslookup are there to debug with.
func helloImage(base, hello layer) image {
	return image{
		name: "docker.io/library/hello:latest",
		tag:  "latest",
		config: ocispec.ImageConfig{
			Env:          []string{defaultPath},
			Cmd:          []string{"/hello"},
			ExposedPorts: map[string]struct{}{"8080/tcp": {}},
		},
		layers: []layer{base, hello},
		history: []ocispec.History{
			{Created: &created, CreatedBy: "examples/images/build: busybox-static with its applet links, /etc/passwd, /etc/group"},
			{Created: &created, CreatedBy: "examples/images/build: go build " + helloPackage},
		},
	}
}
