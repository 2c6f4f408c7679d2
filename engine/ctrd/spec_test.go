package ctrd

import (
	"context"
	"strings"
	"testing"
	"time"

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

func TestGracePeriodIsTheCallersElseTheServicesElseTenSeconds(t *testing.T) {
	withGrace := engine.ContainerSpec{Process: engine.Process{StopGracePeriod: 3 * time.Second}}
	for _, tc := range []struct {
		spec    engine.ContainerSpec
		timeout time.Duration
		want    time.Duration
	}{
		{withGrace, 0, 3 * time.Second},
		{engine.ContainerSpec{}, 0, defaultStopTimeout},
		{withGrace, 5 * time.Second, 5 * time.Second},
		{withGrace, -1, 0},
	} {
		if got := gracePeriod(tc.spec, tc.timeout); got != tc.want {
			t.Errorf("gracePeriod(stop_grace_period %v, timeout %v) = %v, want %v", tc.spec.Process.StopGracePeriod, tc.timeout, got, tc.want)
		}
	}
}
