package ctrd

import (
	"net"
	"strings"
	"testing"

	"github.com/stackdev/stack/engine"
)

func specWithPort(project, service string, port uint16) engine.ContainerSpec {
	return engine.ContainerSpec{Project: project, Service: service, Name: project + "-" + service + "-1",
		Network: engine.NetworkConfig{Ports: []engine.PortBinding{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 80, Protocol: "tcp"}}}}
}

func TestCheckHostPortsFindsAListeningProcess(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	err = CheckHostPorts([]engine.ContainerSpec{specWithPort("demo", "web", port)}, engine.State{})
	if err == nil || !strings.Contains(err.Error(), `service "web": ports: host port 127.0.0.1:`) || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("err = %v, want one naming the service and the port in use", err)
	}
}

func TestCheckHostPortsFindsAnotherProjectsContainer(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	other := engine.Container{Name: "other-web-1", Project: "other", Status: engine.StatusRunning,
		Ports: []engine.PortBinding{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 80, Protocol: "tcp"}}}
	err := CheckHostPorts([]engine.ContainerSpec{specWithPort("demo", "web", port)}, engine.State{Containers: []engine.Container{other}})
	if err == nil || !strings.Contains(err.Error(), "published by container other-web-1 of project other") {
		t.Fatalf("err = %v, want one naming the other project's container", err)
	}
}

func TestCheckHostPortsLetsAReplacementTakeOverItsProjectsPort(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	old := engine.Container{Name: "demo-web-1", Project: "demo", Status: engine.StatusRunning,
		Ports: []engine.PortBinding{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 80, Protocol: "tcp"}}}
	if err := CheckHostPorts([]engine.ContainerSpec{specWithPort("demo", "web", port)}, engine.State{Containers: []engine.Container{old}}); err != nil {
		t.Fatalf("replacement blocked by its own project's port: %v", err)
	}
}
