package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
)

func TestParsePublishReadsComposeShortSyntax(t *testing.T) {
	for in, want := range map[string]engine.PortBinding{
		"8080:80":               {HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
		"127.0.0.1:5353:53/udp": {HostIP: "127.0.0.1", HostPort: 5353, ContainerPort: 53, Protocol: "udp"},
		":80":                   {ContainerPort: 80, Protocol: "tcp"},
	} {
		got, err := parsePublish(in)
		if err != nil || got != want {
			t.Errorf("parsePublish(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"80", "a:80", "1:2:3:4", "8080:0", "8080:80/sctp", "70000:80"} {
		if _, err := parsePublish(bad); err == nil {
			t.Errorf("parsePublish(%q) accepted a malformed value", bad)
		}
	}
}

func TestRunMountsTellPathsFromProjectVolumes(t *testing.T) {
	d := compose.Desired{Volumes: []engine.VolumeSpec{{Name: "proj_data", Key: "data"}}}
	got, err := runMounts([]string{"/srv:/srv:ro", "data:/data", "other:/other"}, d)
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.Mount{
		{Type: engine.MountBind, Source: "/srv", Target: "/srv", ReadOnly: true, CreateHostPath: true},
		{Type: engine.MountVolume, Source: "proj_data", Target: "/data"},
		{Type: engine.MountVolume, Source: "other", Target: "/other"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("runMounts = %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"/srv", "/srv:rel", "/a:/b:rx"} {
		if _, err := runMounts([]string{bad}, d); err == nil {
			t.Errorf("runMounts(%q) accepted a malformed value", bad)
		}
	}
}

func TestOneOffSpecIsNamedLabelledAndStrippedAsComposeDoes(t *testing.T) {
	base := engine.ContainerSpec{
		Name: "p-web-1", Project: "p", Service: "web", Number: 1,
		Labels:  map[string]string{engine.LabelOneOff: "False", engine.LabelNumber: "1"},
		Process: engine.Process{Env: []string{"A=1", "B=2"}},
		Network: engine.NetworkConfig{
			Networks: []engine.NetworkAttachment{{Network: "p_default", Aliases: []string{"web", "p-web-1"}}},
			Ports:    []engine.PortBinding{{HostPort: 80, ContainerPort: 80, Protocol: "tcp"}},
		},
		Restart: engine.RestartPolicy{Name: "always"},
	}
	d := compose.Desired{Project: "p", Containers: []engine.ContainerSpec{base}}
	spec, err := oneOffSpec(d, "web", runFlags{env: []string{"B=3", "C=4"}}, []string{"echo", "hi"})
	if err != nil {
		t.Fatal(err)
	}
	slug := spec.Labels[labelSlug]
	if len(slug) != 64 || spec.Name != "p-web-run-"+slug[:12] || !strings.HasPrefix(spec.Name, "p-web-run-") {
		t.Errorf("name %q, slug %q: want p-web-run-<first 12 of a 64-hex slug>", spec.Name, slug)
	}
	if !spec.OneOff || spec.Number != 0 || spec.Labels[engine.LabelOneOff] != "True" || spec.Labels[engine.LabelNumber] != "" {
		t.Errorf("one-off marks: OneOff %v Number %d labels %v", spec.OneOff, spec.Number, spec.Labels)
	}
	if len(spec.Network.Ports) != 0 || spec.Restart.Name != "no" {
		t.Errorf("ports %v restart %q: want no ports and no restart policy", spec.Network.Ports, spec.Restart.Name)
	}
	if got := spec.Network.Networks[0].Aliases; !reflect.DeepEqual(got, []string{spec.Name}) {
		t.Errorf("aliases %v, want only the container's own name", got)
	}
	if !reflect.DeepEqual(spec.Process.Env, []string{"A=1", "B=3", "C=4"}) || !reflect.DeepEqual(spec.Process.Command, []string{"echo", "hi"}) {
		t.Errorf("env %v command %v", spec.Process.Env, spec.Process.Command)
	}
	if base.Labels[engine.LabelOneOff] != "False" || len(base.Network.Ports) != 1 || base.Network.Networks[0].Aliases[0] != "web" {
		t.Errorf("oneOffSpec changed the service's own spec: %+v", base)
	}
	if _, err := oneOffSpec(d, "nope", runFlags{}, nil); err == nil || !strings.Contains(err.Error(), "no such service: nope") {
		t.Errorf("unknown service: %v", err)
	}
}
