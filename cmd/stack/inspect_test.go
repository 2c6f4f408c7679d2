package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stackdev/stack/engine"
)

// stack inspect speaks Docker's field names, so that `jq` lines written
// for `docker inspect` keep working.
func TestInspectUsesDockersFieldNames(t *testing.T) {
	ctr := engine.Container{
		ID: "abc", Name: "demo-web-1", Status: engine.StatusRunning, Pid: 42, RestartCount: 2,
		Restart:   engine.RestartPolicy{Name: "on-failure", MaxAttempts: 5},
		Networks:  []string{"demo_default"},
		Addresses: map[string]string{"demo_default": "10.89.0.2"},
		Aliases:   map[string][]string{"demo_default": {"web"}},
		Ports:     []engine.PortBinding{{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
	}
	b, err := json.Marshal(inspectContainer(nil, ctr))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"Id":"abc"`, `"Name":"/demo-web-1"`, `"Status":"running"`, `"Running":true`, `"Pid":42`, `"RestartCount":2`,
		`"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":5}`,
		`"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]`,
		`"demo_default":{"Aliases":["web"],"IPAddress":"10.89.0.2"}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("inspect output lacks %s:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), `"Health"`) {
		t.Errorf("a container without a healthcheck shows a Health object:\n%s", b)
	}
}
