package ctrd

import (
	"slices"
	"testing"
)

// A containerd started for the user must not pass the command's Go
// runtime settings on to its shims.
func TestStartedContainerdGetsNoGoRuntimeSettings(t *testing.T) {
	env := []string{"PATH=/usr/bin", "GODEBUG=inittrace=1", "GOGC=off", "HOME=/root", "GOMAXPROCS=1", "GOMEMLIMIT=1GiB", "GOTRACEBACK=all", "GOPATH=/go"}
	got := withoutGoRuntimeSettings(env)
	want := []string{"PATH=/usr/bin", "HOME=/root", "GOPATH=/go"}
	if !slices.Equal(got, want) {
		t.Fatalf("environment %q, want %q", got, want)
	}
}
