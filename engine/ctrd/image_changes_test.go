package ctrd

import (
	"reflect"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestApplyChangesLikeDockerImport(t *testing.T) {
	cfg, err := ApplyChanges(ocispec.ImageConfig{Env: []string{"PATH=/bin"}}, []string{
		`CMD ["nginx", "-g", "daemon off;"]`,
		`entrypoint /docker-entrypoint.sh`,
		`ENV A=1 B="two words" C=three\ words`,
		`ENV PATH /usr/bin:/bin`,
		`LABEL org.example.a=x "org.example.b"='y z'`,
		`WORKDIR /srv`,
		`WORKDIR app`,
		`USER www:www`,
		`EXPOSE 80 53/udp`,
		`VOLUME ["/data", "/cache"]`,
		`STOPSIGNAL SIGQUIT`,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := ocispec.ImageConfig{
		Cmd:          []string{"nginx", "-g", "daemon off;"},
		Entrypoint:   []string{"/bin/sh", "-c", "/docker-entrypoint.sh"},
		Env:          []string{"PATH=/usr/bin:/bin", "A=1", "B=two words", "C=three words"},
		Labels:       map[string]string{"org.example.a": "x", "org.example.b": "y z"},
		WorkingDir:   "/srv/app",
		User:         "www:www",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		Volumes:      map[string]struct{}{"/data": {}, "/cache": {}},
		StopSignal:   "SIGQUIT",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestApplyChangesRejectsWhatDockerRejects(t *testing.T) {
	for change, want := range map[string]string{
		"RUN apt-get update": `unknown --change instruction "RUN" in "RUN apt-get update" (supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)`,
		"CMD":                `--change "CMD": CMD needs a value`,
		`CMD ["a", 1]`:       `--change "CMD [\"a\", 1]": exec form must be a JSON array of strings`,
		"EXPOSE http":        `--change "EXPOSE http": "http" is not a port (like 80 or 53/udp)`,
		"EXPOSE 70000":       `"70000" is not a port`,
		`ENV A="open`:        `unterminated " quote`,
		"LABEL a=1 =b":       `"=b" is not KEY=VALUE`,
	} {
		if _, err := ApplyChanges(ocispec.ImageConfig{}, []string{change}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error containing %q", change, err, want)
		}
	}
}
