package ctrd

import (
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/stackdev/stack/engine"
)

func TestProcessArgsFollowDocker(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}}
	cases := []struct {
		name string
		p    engine.Process
		want []string
	}{
		{"image's", engine.Process{}, []string{"/entry", "default"}},
		{"command replaces cmd", engine.Process{Command: []string{"run"}}, []string{"/entry", "run"}},
		{"entrypoint drops image cmd", engine.Process{Entrypoint: []string{"/other"}}, []string{"/other"}},
		{"both", engine.Process{Entrypoint: []string{"sh", "-c"}, Command: []string{"echo"}}, []string{"sh", "-c", "echo"}},
		{"explicitly empty command", engine.Process{Command: []string{}}, []string{"/entry"}},
	}
	for _, tc := range cases {
		if got := processArgs(tc.p, img); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCapNamesNormalise(t *testing.T) {
	got := capNames([]string{"net_admin", "CAP_SYS_TIME", "all"})
	want := []string{"CAP_NET_ADMIN", "CAP_SYS_TIME", "ALL"}
	if !slices.Equal(got, want) || !containsAll(got) {
		t.Fatalf("%q", got)
	}
}
