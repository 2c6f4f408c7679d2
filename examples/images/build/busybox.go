package main

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// defaultPath is the PATH every example image sets, as Docker's images do.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// busybox is the host's static busybox: its bytes and its applet names.
type busybox struct {
	binary  []byte
	applets []string
}

// readBusybox reads a statically linked busybox and asks it for its applets.
func readBusybox(ctx context.Context, path string) (busybox, error) {
	if err := checkStatic(path); err != nil {
		return busybox{}, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return busybox{}, fmt.Errorf("read busybox: %w (apt-get install busybox-static)", err)
	}
	out, err := exec.CommandContext(ctx, path, "--list").Output()
	if err != nil {
		return busybox{}, fmt.Errorf("%s --list: %w", path, err)
	}
	applets := strings.Fields(string(out))
	if !slices.Contains(applets, "sh") {
		return busybox{}, fmt.Errorf("%s --list has no sh applet; is it busybox?", path)
	}
	return busybox{binary: data, applets: applets}, nil
}

// elfMachines maps Go architectures to the ELF machine their binaries carry.
var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "386": elf.EM_386,
	"arm": elf.EM_ARM, "riscv64": elf.EM_RISCV, "ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390,
}

// checkStatic makes sure path is a static executable for this architecture:
// the image has no C library for a dynamic one to load.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("busybox %s: %w (apt-get install busybox-static)", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("busybox %s is dynamically linked; the image needs a static one (apt-get install busybox-static)", path)
		}
	}
	if want, ok := elfMachines[runtime.GOARCH]; ok && f.Machine != want {
		return fmt.Errorf("busybox %s is for %s, not %s", path, f.Machine, runtime.GOARCH)
	}
	return nil
}

// Files of the busybox root filesystem.
var (
	passwd = []byte(`root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
`)
	group = []byte(`root:x:0:
nobody:x:65534:
user:x:1000:
`)
	nsswitch  = []byte("hosts: files dns\n")
	hosts     = []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	indexHTML = []byte("<html><body>busybox httpd works</body></html>\n")
)

// rootfs lists the busybox layer: the directories of a small Linux system,
// /bin/busybox with a link per applet, and the /etc files that user and
// name lookups read (the runtime may mount its own /etc/hosts over this one).
func (bb busybox) rootfs() []entry {
	entries := []entry{}
	for _, d := range []string{"bin", "dev", "etc", "home", "proc", "run", "sbin", "sys", "usr", "usr/bin", "usr/sbin", "var", "var/www"} {
		entries = append(entries, dir(d, 0o755))
	}
	home := dir("home/user", 0o755)
	home.uid, home.gid = 1000, 1000
	entries = append(entries, home, dir("root", 0o700), dir("tmp", 0o1777))
	entries = append(entries,
		file("etc/passwd", 0o644, passwd),
		file("etc/group", 0o644, group),
		file("etc/nsswitch.conf", 0o644, nsswitch),
		file("etc/hosts", 0o644, hosts),
		file("var/www/index.html", 0o644, indexHTML),
		file("bin/busybox", 0o755, bb.binary),
	)
	for _, a := range slices.Sorted(slices.Values(bb.applets)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			entries = append(entries, symlink("bin/"+a, "busybox"))
		}
	}
	return entries
}

// busyboxImage is docker.io/library/busybox:latest.
func busyboxImage(base layer) image {
	return image{
		name:   "docker.io/library/busybox:latest",
		tag:    "latest",
		config: ocispec.ImageConfig{Env: []string{defaultPath}, Cmd: []string{"sh"}},
		layers: []layer{base},
		history: []ocispec.History{
			{Created: &created, CreatedBy: "examples/images/build: busybox-static with its applet links, /etc/passwd, /etc/group"},
		},
	}
}
