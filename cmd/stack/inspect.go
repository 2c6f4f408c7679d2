package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func init() { registerCommand(newInspectCommand) }

func newInspectCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect [SERVICE...]",
		Short: "Show the service containers' details as JSON, with their health and its last probes",
		RunE: func(cmd *cobra.Command, services []string) error {
			all := func(engine.Container) bool { return true }
			return a.withContainers(cmd.Context(), services, all, func(c *ctrd.Client, ctrs []engine.Container) error {
				return a.printInspect(cmd.Context(), c, ctrs)
			})
		},
	}
}

// inspected is a container as `docker inspect` shows one, with the fields
// stack knows; the names are Docker's so that scripts carry over.
type inspected struct {
	ID              string            `json:"Id"`
	Name            string            `json:"Name"`
	Created         time.Time         `json:"Created"`
	State           inspectedState    `json:"State"`
	Image           string            `json:"Image"`
	RestartCount    int               `json:"RestartCount"`
	Config          inspectedConfig   `json:"Config"`
	HostConfig      inspectedHost     `json:"HostConfig"`
	NetworkSettings inspectedNetworks `json:"NetworkSettings"`
}

type inspectedState struct {
	Status     string           `json:"Status"`
	Running    bool             `json:"Running"`
	Paused     bool             `json:"Paused"`
	Pid        int              `json:"Pid"`
	ExitCode   int              `json:"ExitCode"`
	StartedAt  time.Time        `json:"StartedAt"`
	FinishedAt time.Time        `json:"FinishedAt"`
	Health     *inspectedHealth `json:"Health,omitempty"`
}

type inspectedHealth struct {
	Status        string           `json:"Status"`
	FailingStreak int              `json:"FailingStreak"`
	Log           []inspectedProbe `json:"Log"`
}

type inspectedProbe struct {
	Start    time.Time `json:"Start"`
	End      time.Time `json:"End"`
	ExitCode int       `json:"ExitCode"`
	Output   string    `json:"Output"`
}

type inspectedConfig struct {
	Hostname string            `json:"Hostname"`
	Image    string            `json:"Image"`
	Cmd      string            `json:"Cmd"`
	Labels   map[string]string `json:"Labels"`
}

type inspectedHost struct {
	RestartPolicy inspectedRestart `json:"RestartPolicy"`
}

type inspectedRestart struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

type inspectedNetworks struct {
	Ports    map[string][]inspectedPort     `json:"Ports"`
	Networks map[string]inspectedAttachment `json:"Networks"`
}

type inspectedPort struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

type inspectedAttachment struct {
	Aliases   []string `json:"Aliases"`
	IPAddress string   `json:"IPAddress"`
}

func (a *app) printInspect(ctx context.Context, c *ctrd.Client, ctrs []engine.Container) error {
	if len(ctrs) == 0 {
		return fmt.Errorf("no container found: check the service names with `stack ps -a`")
	}
	out := make([]inspected, 0, len(ctrs))
	for _, ctr := range ctrs {
		if err := ctx.Err(); err != nil {
			return err
		}
		out = append(out, inspectContainer(c, ctr))
	}
	b, err := json.MarshalIndent(out, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, string(b))
	return err
}

func inspectContainer(c *ctrd.Client, ctr engine.Container) inspected {
	in := inspected{
		ID: ctr.ID, Name: "/" + ctr.Name, Created: ctr.CreatedAt, Image: ctr.ImageID, RestartCount: ctr.RestartCount,
		State: inspectedState{
			Status: string(ctr.Status), Running: ctr.Status == engine.StatusRunning, Paused: ctr.Status == engine.StatusPaused,
			Pid: ctr.Pid, ExitCode: ctr.ExitCode, StartedAt: ctr.StartedAt, FinishedAt: ctr.FinishedAt,
		},
		Config:     inspectedConfig{Hostname: ctr.Hostname, Image: ctr.Image, Cmd: ctr.Command, Labels: ctr.Labels},
		HostConfig: inspectedHost{RestartPolicy: inspectedRestart{Name: restartName(ctr.Restart), MaximumRetryCount: ctr.Restart.MaxAttempts}},
		NetworkSettings: inspectedNetworks{
			Ports: map[string][]inspectedPort{}, Networks: map[string]inspectedAttachment{},
		},
	}
	if ctr.Health != "" {
		in.State.Health = inspectHealth(c, ctr)
	}
	for _, p := range ctr.Ports {
		key := fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
		if p.HostPort == 0 {
			in.NetworkSettings.Ports[key] = nil
			continue
		}
		in.NetworkSettings.Ports[key] = append(in.NetworkSettings.Ports[key], inspectedPort{HostIP: p.HostIP, HostPort: fmt.Sprint(p.HostPort)})
	}
	nets := append([]string(nil), ctr.Networks...)
	sort.Strings(nets)
	for _, n := range nets {
		in.NetworkSettings.Networks[n] = inspectedAttachment{Aliases: ctr.Aliases[n], IPAddress: ctr.Addresses[n]}
	}
	return in
}

// inspectHealth is the recorded health with its last probes; the status is
// Observe's (a record of an earlier run of the task reads as starting).
func inspectHealth(c *ctrd.Client, ctr engine.Container) *inspectedHealth {
	h := &inspectedHealth{Status: ctr.Health, Log: []inspectedProbe{}}
	hs, ok, err := c.LoadHealth(ctr.ID)
	if err != nil || !ok || !hs.StartedAt.Equal(ctr.StartedAt) {
		return h
	}
	h.FailingStreak = hs.FailingStreak
	for _, p := range hs.Log {
		h.Log = append(h.Log, inspectedProbe{Start: p.Start, End: p.End, ExitCode: p.ExitCode, Output: p.Output})
	}
	return h
}

func restartName(p engine.RestartPolicy) string {
	if p.Name == "" {
		return "no"
	}
	return p.Name
}
