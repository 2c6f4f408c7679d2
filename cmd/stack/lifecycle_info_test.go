package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func TestPortFindsTheBindingOfPortAndProtocol(t *testing.T) {
	c := engine.Container{Name: "demo-web-1", Ports: []engine.PortBinding{
		{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
		{HostIP: "127.0.0.1", HostPort: 5353, ContainerPort: 53, Protocol: "udp"},
	}}
	for _, tc := range []struct {
		port     uint16
		protocol string
		want     string
	}{
		{80, "tcp", "0.0.0.0:8080"},
		{53, "udp", "127.0.0.1:5353"},
	} {
		got, err := publishedAddress(c, tc.port, tc.protocol)
		if err != nil || got != tc.want {
			t.Errorf("%d/%s = %q, %v; want %s", tc.port, tc.protocol, got, err, tc.want)
		}
	}
	for _, bad := range []struct {
		port     uint16
		protocol string
	}{{53, "tcp"}, {81, "tcp"}, {80, "sctp"}} {
		if _, err := publishedAddress(c, bad.port, bad.protocol); err == nil {
			t.Errorf("%d/%s: no error", bad.port, bad.protocol)
		}
	}
}

func TestPortIndexPicksTheReplica(t *testing.T) {
	ctrs := []engine.Container{{Name: "demo-web-1", Number: 1}, {Name: "demo-web-2", Number: 2}}
	if c, err := replica(ctrs, "web", 0); err != nil || c.Name != "demo-web-1" {
		t.Errorf("no --index: %s, %v", c.Name, err)
	}
	if c, err := replica(ctrs, "web", 2); err != nil || c.Name != "demo-web-2" {
		t.Errorf("--index 2: %s, %v", c.Name, err)
	}
	if _, err := replica(ctrs, "web", 3); err == nil || !strings.Contains(err.Error(), "number 3") {
		t.Errorf("--index 3: %v", err)
	}
	if _, err := replica(nil, "web", 0); err == nil || !strings.Contains(err.Error(), "stack up") {
		t.Errorf("no container: %v", err)
	}
}

func TestImagesMatchesByDigestAndShowsMissingOnes(t *testing.T) {
	imgs := []ctrd.ImageSummary{
		{Name: "docker.io/library/busybox:latest", Repository: "busybox", Tag: "latest", Digest: "sha256:aaaaaaaaaaaaaaaa", Size: 1_070_000},
		{Name: "docker.io/library/busybox:old", Repository: "busybox", Tag: "old", Digest: "sha256:bbbbbbbbbbbbbbbb", Size: 900_000},
	}
	ctrs := []engine.Container{
		// Created from :latest before it was re-tagged: the digest decides.
		{Name: "demo-a-1", Image: "docker.io/library/busybox:latest", ImageID: "sha256:bbbbbbbbbbbbbbbb"},
		{Name: "demo-b-1", Image: "docker.io/library/busybox:latest", ImageID: "sha256:aaaaaaaaaaaaaaaa"},
		{Name: "demo-c-1", Image: "docker.io/library/gone:1", ImageID: "sha256:cccccccccccccccc"},
	}
	var b bytes.Buffer
	if err := renderImages(&b, ctrs, imgs, false); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"CONTAINER   REPOSITORY   TAG      IMAGE ID       SIZE",
		"demo-a-1    busybox      old      bbbbbbbbbbbb   900kB",
		"demo-b-1    busybox      latest   aaaaaaaaaaaa   1.07MB",
		"demo-c-1    gone         1        <missing>      ",
	}, "\n") + "\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := renderImages(&b, ctrs, imgs, true); err != nil {
		t.Fatal(err)
	}
	if b.String() != "bbbbbbbbbbbb\naaaaaaaaaaaa\n" {
		t.Errorf("-q: %q", b.String())
	}
}
