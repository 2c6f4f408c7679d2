package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine"
)

func init() { registerCommand(newLsCommand) }

func newLsCommand(a *app) *cobra.Command {
	var all, quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List running projects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			state, err := c.Observe(cmd.Context(), "")
			if err != nil {
				return err
			}
			return renderProjects(a.stdout, summarizeProjects(state.Containers, all), format, quiet)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Show all projects, also stopped ones")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display project names")
	cmd.Flags().StringVar(&format, "format", "table", "Output format: table or json")
	return cmd
}

// projectSummary has compose ls's field names.
type projectSummary struct {
	Name        string
	Status      string
	ConfigFiles string
}

func summarizeProjects(containers []engine.Container, all bool) []projectSummary {
	counts := map[string]map[engine.Status]int{}
	files := map[string]string{}
	for _, c := range containers {
		if counts[c.Project] == nil {
			counts[c.Project] = map[engine.Status]int{}
		}
		counts[c.Project][c.Status]++
		if f := c.Labels[engine.LabelConfigFiles]; f != "" {
			files[c.Project] = f
		}
	}
	var out []projectSummary
	for name, byStatus := range counts {
		if !all && byStatus[engine.StatusRunning] == 0 {
			continue
		}
		out = append(out, projectSummary{Name: name, Status: statusCounts(byStatus), ConfigFiles: files[name]})
	}
	slices.SortFunc(out, func(x, y projectSummary) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// statusCounts renders "running(2), exited(1)" as compose does.
func statusCounts(byStatus map[engine.Status]int) string {
	var parts []string
	for _, st := range []engine.Status{engine.StatusRunning, engine.StatusPaused, engine.StatusCreated, engine.StatusExited, engine.StatusUnknown} {
		if n := byStatus[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s(%d)", st, n))
		}
	}
	return strings.Join(parts, ", ")
}

func renderProjects(w io.Writer, projects []projectSummary, format string, quiet bool) error {
	if quiet {
		for _, p := range projects {
			fmt.Fprintln(w, p.Name)
		}
		return nil
	}
	switch format {
	case "json":
		if projects == nil {
			projects = []projectSummary{}
		}
		return json.NewEncoder(w).Encode(projects)
	case "table", "":
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATUS\tCONFIG FILES")
		for _, p := range projects {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Status, p.ConfigFiles)
		}
		return tw.Flush()
	default:
		return fmt.Errorf("unknown --format %q: use table or json", format)
	}
}
