package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/netns"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containernetworking/cni/libcni"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	floorNamespace = "bench-floor"
	floorBridge    = "stkbenchfl0"
	floorSubnet    = "10.254.250.0/24"
)

// floor does, with the containerd client and libcni alone, what stack does
// for N services: the cost no orchestrator on this stack can go under.
type floor struct {
	ctr   *containerd.Client
	image containerd.Image
	dir   string
	cni   *libcni.CNIConfig
	conf  *libcni.NetworkConfigList
}

func newFloor(ctx context.Context, cfg config) (*floor, error) {
	ctr, err := containerd.New(cfg.address, containerd.WithDefaultNamespace(floorNamespace))
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "stack-bench-floor-")
	if err != nil {
		return nil, err
	}
	f := &floor{ctr: ctr, dir: dir}
	if f.image, err = importBusybox(ctx, ctr, filepath.Join(cfg.images, "busybox.oci.tar")); err != nil {
		return nil, err
	}
	f.cni = libcni.NewCNIConfigWithCacheDir([]string{"/usr/lib/cni", "/opt/cni/bin"}, filepath.Join(dir, "cache"), nil)
	if f.conf, err = libcni.NetworkConfFromBytes(f.conflist()); err != nil {
		return nil, err
	}
	deleteFloorRules() // left by a killed run
	for _, rule := range floorRules {
		if out, err := exec.Command("iptables", append([]string{"-w", "-I"}, rule...)...).CombinedOutput(); err != nil {
			deleteFloorRules()
			return nil, fmt.Errorf("iptables: %w: %s", err, out)
		}
	}
	return f, nil
}

// floorRules are the rules stack adds with a network (bridgeRules in
// engine/ctrd), once, where the bridge plugin's ipMasq and the firewall
// plugin would add them per container: masquerade for the subnet, and the
// acceptance of its forwarded traffic.
var floorRules = [][]string{
	{"POSTROUTING", "-t", "nat", "-s", floorSubnet, "!", "-o", floorBridge, "!", "-d", "224.0.0.0/4",
		"-m", "addrtype", "!", "--src-type", "LOCAL", "-j", "MASQUERADE", "-m", "comment", "--comment", "stack bench floor"},
	{"FORWARD", "-s", floorSubnet, "-i", floorBridge, "-j", "ACCEPT", "-m", "comment", "--comment", "stack bench floor"},
	{"FORWARD", "-d", floorSubnet, "-o", floorBridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
		"-j", "ACCEPT", "-m", "comment", "--comment", "stack bench floor"},
}

func deleteFloorRules() {
	for _, rule := range floorRules {
		for range 10 { // bounded: a copy per killed run at most
			if exec.Command("iptables", append([]string{"-w", "-D"}, rule...)...).Run() != nil {
				break
			}
		}
	}
}

func importBusybox(ctx context.Context, ctr *containerd.Client, archive string) (containerd.Image, error) {
	r, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	imgs, err := ctr.Import(ctx, r)
	if err != nil || len(imgs) == 0 {
		return nil, fmt.Errorf("import %s: %v", archive, err)
	}
	img := containerd.NewImage(ctr, imgs[0])
	if err := img.Unpack(ctx, "overlayfs"); err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	return img, nil
}

// conflist is the same plugin chain stack uses for a container that
// publishes no ports: bridge with host-local, without portmap (which stack
// runs only for attachments with port mappings), the masquerade and the
// forward rules left to rules for the subnet (floorRules).
func (f *floor) conflist() []byte {
	conf := map[string]any{
		"cniVersion": "1.0.0", "name": "stack-bench-floor",
		"plugins": []any{
			map[string]any{"type": "bridge", "bridge": floorBridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{"type": "host-local", "dataDir": filepath.Join(f.dir, "ipam"),
					"ranges": [][]any{{map[string]any{"subnet": floorSubnet}}}, "routes": []any{map[string]any{"dst": "0.0.0.0/0"}}}},
		},
	}
	b, _ := json.Marshal(conf)
	return b
}

func (f *floor) close() {
	deleteFloorRules()
	_ = exec.Command("ip", "link", "del", floorBridge).Run()
	ctx := context.Background()
	_ = f.ctr.ImageService().Delete(ctx, f.image.Name())
	f.ctr.Close()
	os.RemoveAll(f.dir)
}

type floorBox struct {
	id   string
	ns   *netns.NetNS
	ctr  containerd.Container
	task containerd.Task
}

// measureOnce adds one run of each floor figure to s.
func (f *floor) measureOnce(ctx context.Context, n int, s *floorSamples) error {
	took, boxes, err := f.createStartAll(ctx, n)
	if err != nil {
		return err
	}
	s.createStart = append(s.createStart, took)
	start := time.Now()
	if err := parallel(boxes, func(b *floorBox) error { return f.stopRemove(ctx, b) }); err != nil {
		return err
	}
	_ = exec.Command("ip", "link", "del", floorBridge).Run()
	s.stopRemove = append(s.stopRemove, time.Since(start))

	took, one, err := f.createStartAll(ctx, 1)
	if err != nil {
		return err
	}
	s.oneCreateStart = append(s.oneCreateStart, took)
	start = time.Now()
	if err := f.stopRemove(ctx, one[0]); err != nil {
		return err
	}
	s.oneStopRemove = append(s.oneStopRemove, time.Since(start))
	_ = exec.Command("ip", "link", "del", floorBridge).Run()
	return nil
}

func (f *floor) createStartAll(ctx context.Context, n int) (time.Duration, []*floorBox, error) {
	boxes := make([]*floorBox, n)
	for i := range boxes {
		boxes[i] = &floorBox{id: fmt.Sprintf("floor-%d-%d", time.Now().UnixNano(), i)}
	}
	start := time.Now()
	err := parallel(boxes, func(b *floorBox) error { return f.createStart(ctx, b) })
	return time.Since(start), boxes, err
}

func (f *floor) createStart(ctx context.Context, b *floorBox) error {
	var err error
	if b.ns, err = netns.NewNetNS("/var/run/netns"); err != nil {
		return err
	}
	rt := &libcni.RuntimeConf{ContainerID: b.id, NetNS: b.ns.GetPath(), IfName: "eth0"}
	if _, err := f.cni.AddNetworkList(ctx, f.conf, rt); err != nil {
		return fmt.Errorf("cni add: %w", err)
	}
	b.ctr, err = f.ctr.NewContainer(ctx, b.id,
		containerd.WithImage(f.image),
		containerd.WithSnapshotter("overlayfs"),
		containerd.WithNewSnapshot(b.id, f.image),
		containerd.WithRuntime("io.containerd.runc.v2", &options.Options{Root: "/run/stack-bench-runc"}),
		containerd.WithNewSpec(oci.WithImageConfig(f.image), oci.WithProcessArgs("sleep", "3600"),
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: b.ns.GetPath()})))
	if err != nil {
		return err
	}
	if b.task, err = b.ctr.NewTask(ctx, cio.NullIO); err != nil {
		return err
	}
	return b.task.Start(ctx)
}

func (f *floor) stopRemove(ctx context.Context, b *floorBox) error {
	exited, err := b.task.Wait(ctx)
	if err != nil {
		return err
	}
	if err := b.task.Kill(ctx, syscall.SIGKILL); err != nil {
		return err
	}
	<-exited
	if _, err := b.task.Delete(ctx); err != nil {
		return err
	}
	rt := &libcni.RuntimeConf{ContainerID: b.id, NetNS: b.ns.GetPath(), IfName: "eth0"}
	if err := f.cni.DelNetworkList(ctx, f.conf, rt); err != nil {
		return fmt.Errorf("cni del: %w", err)
	}
	if err := b.ns.Remove(); err != nil {
		return err
	}
	return b.ctr.Delete(ctx, containerd.WithSnapshotCleanup)
}

// parallel runs fn on every box at once and joins the errors.
func parallel(boxes []*floorBox, fn func(*floorBox) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(boxes))
	for i, b := range boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(b)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
