// Command build writes the example images as OCI image archives, offline:
//
//	go run ./examples/images/build -o DIR
//
// writes DIR/busybox.oci.tar (docker.io/library/busybox:latest, from the
// host's static busybox with a link per applet) and DIR/hello.oci.tar
// (docker.io/library/hello:latest, the example server on the busybox layer).
// Load them with `stack image load -i DIR/busybox.oci.tar`. The archives are
// reproducible: the same busybox and Go toolchain give the same digests.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
)

func main() {
	outDir := flag.String("o", "examples/images/out", "directory to write the archives to")
	busyboxPath := flag.String("busybox", "/bin/busybox", "a statically linked busybox (Debian: busybox-static)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *outDir, *busyboxPath, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "build example images:", err)
		os.Exit(1)
	}
}

// run builds both images into outDir and prints one line per archive.
func run(ctx context.Context, outDir, busyboxPath string, stdout io.Writer) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", outDir, err)
	}
	images, err := buildImages(ctx, busyboxPath)
	if err != nil {
		return err
	}
	for _, img := range images {
		path := filepath.Join(outDir, img.file)
		desc, err := writeArchiveFile(path, img.image)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", path, img.name, desc.Digest)
	}
	return nil
}

// namedImage is an image and the archive file it goes to.
type namedImage struct {
	file string
	image
}

func buildImages(ctx context.Context, busyboxPath string) ([]namedImage, error) {
	bb, err := readBusybox(ctx, busyboxPath)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "stack-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	helloBin, err := buildHello(ctx, tmp)
	if err != nil {
		return nil, err
	}
	base, err := buildLayer(bb.rootfs())
	if err != nil {
		return nil, err
	}
	hello, err := helloLayer(helloBin)
	if err != nil {
		return nil, err
	}
	return []namedImage{
		{"busybox.oci.tar", busyboxImage(base)},
		{"hello.oci.tar", helloImage(base, hello)},
	}, nil
}
