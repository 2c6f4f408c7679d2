package ctrd

import (
	"context"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stackdev/stack/engine"
)

func TestDomainnameIsAlsoSetThroughTheUTSSysctl(t *testing.T) {
	in := specInput{id: strings.Repeat("a", 64), spec: engine.ContainerSpec{
		Name: "c", Process: engine.Process{Command: []string{"sh"}, Hostname: "box", Domainname: "example.test"},
	}}
	opts, err := processOpts(in)
	if err != nil {
		t.Fatal(err)
	}
	s := &oci.Spec{Process: &specs.Process{}}
	for _, o := range opts {
		if err := o(context.Background(), nil, &containers.Container{}, s); err != nil {
			t.Fatal(err)
		}
	}
	if s.Hostname != "box" || s.Domainname != "example.test" {
		t.Errorf("hostname %q domainname %q", s.Hostname, s.Domainname)
	}
	if s.Linux == nil || s.Linux.Sysctl["kernel.domainname"] != "example.test" {
		t.Errorf("runc 1.1 ignores the domainname field; want sysctl kernel.domainname, got %+v", s.Linux)
	}
}

func TestNoNewPrivilegesOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		s := &oci.Spec{Process: &specs.Process{NoNewPrivileges: true}} // containerd's default
		for _, o := range securityOpts(engine.Security{NoNewPrivileges: on}) {
			if err := o(context.Background(), nil, &containers.Container{}, s); err != nil {
				t.Fatal(err)
			}
		}
		if s.Process.NoNewPrivileges != on {
			t.Errorf("security_opt no-new-privileges=%v gave NoNewPrivileges=%v", on, s.Process.NoNewPrivileges)
		}
	}
}
