package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine"
)

func init() { registerCommand(newPsCommand) }

type psOptions struct {
	all      bool
	quiet    bool
	services bool
	status   []string
	format   string
}

func newPsCommand(a *app) *cobra.Command {
	var o psOptions
	cmd := &cobra.Command{
		Use:   "ps [SERVICE...]",
		Short: "List the project's containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			var project string
			c, err := a.clientAfter(cmd.Context(), func() (err error) {
				project, err = a.projectName(cmd.Context())
				return err
			})
			if err != nil {
				return err
			}
			defer c.Close()
			state, err := c.Observe(cmd.Context(), project)
			if err != nil {
				return err
			}
			return renderPs(a.stdout, selectPs(state.ProjectContainers(project), args, o), o, time.Now())
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all containers, also stopped ones")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only display IDs")
	f.BoolVar(&o.services, "services", false, "Display services")
	f.StringArrayVar(&o.status, "status", nil, "Filter by status: created, running, paused, exited")
	f.StringVar(&o.format, "format", "table", "Output format: table or json (JSON Lines)")
	return cmd
}

func selectPs(containers []engine.Container, services []string, o psOptions) []engine.Container {
	var out []engine.Container
	for _, c := range containers {
		if c.OneOff && !o.all {
			continue
		}
		if len(services) > 0 && !slices.Contains(services, c.Service) {
			continue
		}
		if len(o.status) > 0 {
			if !slices.Contains(o.status, string(c.Status)) {
				continue
			}
		} else if !o.all && c.Status != engine.StatusRunning && c.Status != engine.StatusPaused {
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y engine.Container) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func renderPs(w io.Writer, containers []engine.Container, o psOptions, now time.Time) error {
	switch {
	case o.quiet:
		for _, c := range containers {
			fmt.Fprintln(w, c.ID)
		}
		return nil
	case o.services:
		seen := map[string]bool{}
		for _, c := range containers {
			if !seen[c.Service] {
				seen[c.Service] = true
				fmt.Fprintln(w, c.Service)
			}
		}
		return nil
	case o.format == "json":
		enc := json.NewEncoder(w)
		for _, c := range containers {
			if err := enc.Encode(psJSON(c, now)); err != nil {
				return err
			}
		}
		return nil
	case o.format == "table" || o.format == "":
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS")
		for _, c := range containers {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, shortImage(c.Image), quoteCommand(c.Command),
				c.Service, humanAgo(now, c.CreatedAt), statusText(c, now), portsText(c.Ports))
		}
		return tw.Flush()
	default:
		return fmt.Errorf("unknown --format %q: use table or json", o.format)
	}
}

// containerSummary mirrors compose's api.ContainerSummary field names, so
// scripts written for `docker compose ps --format json` keep working.
type containerSummary struct {
	ID         string
	Name       string
	Names      []string
	Image      string
	Command    string
	Project    string
	Service    string
	Created    int64
	State      string
	Status     string
	Health     string
	ExitCode   int
	Publishers []publisher
	Labels     string
	Networks   string

	// RestartCount is how many times the daemon restarted the container
	// for its policy since the user last started it (docker inspect's).
	RestartCount int `json:",omitempty"`
}

type publisher struct {
	URL           string
	TargetPort    uint16
	PublishedPort uint16
	Protocol      string
}

func psJSON(c engine.Container, now time.Time) containerSummary {
	s := containerSummary{
		ID: c.ID, Name: c.Name, Names: []string{c.Name}, Image: c.Image, Command: quoteCommand(c.Command),
		Project: c.Project, Service: c.Service, Created: c.CreatedAt.Unix(), State: string(c.Status),
		Status: statusText(c, now), Health: c.Health, ExitCode: c.ExitCode, Networks: strings.Join(c.Networks, ","),
		Labels: joinLabels(c.Labels), Publishers: []publisher{}, RestartCount: c.RestartCount,
	}
	for _, p := range c.Ports {
		s.Publishers = append(s.Publishers, publisher{URL: hostIP(p), TargetPort: p.ContainerPort, PublishedPort: p.HostPort, Protocol: p.Protocol})
	}
	return s
}

func joinLabels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ",")
}

func shortImage(ref string) string {
	ref = strings.TrimPrefix(ref, "docker.io/library/")
	return strings.TrimPrefix(ref, "docker.io/")
}

func quoteCommand(cmd string) string {
	if len(cmd) > 22 {
		cmd = cmd[:21] + "…"
	}
	return `"` + cmd + `"`
}

// restartsText counts the daemon's restarts, when there were some.
func restartsText(c engine.Container) string {
	switch c.RestartCount {
	case 0:
		return ""
	case 1:
		return " (1 restart)"
	}
	return fmt.Sprintf(" (%d restarts)", c.RestartCount)
}

func statusText(c engine.Container, now time.Time) string {
	switch c.Status {
	case engine.StatusRunning, engine.StatusPaused:
		s := "Up " + humanDuration(now.Sub(c.StartedAt))
		if c.Status == engine.StatusPaused {
			s += " (Paused)"
		}
		if c.Health != "" {
			s += " (" + c.Health + ")"
		}
		return s + restartsText(c)
	case engine.StatusExited:
		return fmt.Sprintf("Exited (%d)", c.ExitCode) + restartsText(c)
	case engine.StatusCreated:
		return "Created"
	default:
		return string(c.Status)
	}
}

func hostIP(p engine.PortBinding) string {
	if p.HostIP == "" {
		return "0.0.0.0"
	}
	return p.HostIP
}

func portsText(ports []engine.PortBinding) string {
	parts := make([]string, 0, len(ports))
	for _, p := range ports {
		parts = append(parts, fmt.Sprintf("%s:%d->%d/%s", hostIP(p), p.HostPort, p.ContainerPort, p.Protocol))
	}
	return strings.Join(parts, ", ")
}

func humanAgo(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return humanDuration(now.Sub(t)) + " ago"
}

// humanDuration follows docker's go-units HumanDuration wording.
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	case d.Minutes() < 2:
		return "About a minute"
	case d.Minutes() < 60:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d.Hours() < 2:
		return "About an hour"
	case d.Hours() < 48:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	default:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
}
