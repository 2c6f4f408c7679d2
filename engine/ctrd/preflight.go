package ctrd

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/stackdev/stack/engine"
)

// CheckHostPorts finds, before anything changes, the published host ports
// that are already taken: by a process listening on the host, or by a
// container of another project (portmap publishes through iptables, so a
// bind test alone cannot see those). Ports the observed containers of the
// same project hold are theirs to hand over to their replacements.
func CheckHostPorts(specs []engine.ContainerSpec, all engine.State) error {
	held := map[string]engine.Container{}
	for _, c := range all.Containers {
		if c.Status != engine.StatusRunning && c.Status != engine.StatusPaused {
			continue
		}
		for _, p := range c.Ports {
			held[portKey(p)] = c
		}
	}
	var errs []error
	for _, spec := range specs {
		for _, p := range spec.Network.Ports {
			if p.HostPort == 0 {
				continue
			}
			if err := checkPort(spec, p, held); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func checkPort(spec engine.ContainerSpec, p engine.PortBinding, held map[string]engine.Container) error {
	if owner, ok := held[portKey(p)]; ok {
		if owner.Project == spec.Project {
			return nil
		}
		return fmt.Errorf("service %q: ports: host port %s/%s is already published by container %s of project %s; choose another host port or stop that project",
			spec.Service, hostPortText(p), p.Protocol, owner.Name, owner.Project)
	}
	if err := tryBind(p); err != nil {
		return fmt.Errorf("service %q: ports: host port %s/%s is already in use on this host (%v); choose another host port or stop what holds it",
			spec.Service, hostPortText(p), p.Protocol, err)
	}
	return nil
}

func portKey(p engine.PortBinding) string {
	return p.HostIP + "|" + strconv.Itoa(int(p.HostPort)) + "|" + p.Protocol
}

func hostPortText(p engine.PortBinding) string {
	ip := p.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort)))
}

// tryBind reports whether a process already holds the port.
func tryBind(p engine.PortBinding) error {
	addr := net.JoinHostPort(p.HostIP, strconv.Itoa(int(p.HostPort)))
	if p.Protocol == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}
