package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func init() { registerCommand(newEventsCommand) }

type eventsOptions struct {
	json  bool
	until string
}

func newEventsCommand(a *app) *cobra.Command {
	var o eventsOptions
	cmd := &cobra.Command{
		Use:   "events [OPTIONS] [SERVICE...]",
		Short: "Stream the events of the project's containers as they happen",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runEvents(cmd.Context(), o, args)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "Output events as a stream of json objects")
	cmd.Flags().StringVar(&o.until, "until", "", "Stream events until this time (2013-01-02T13:23:37Z) or for a duration from now (42m)")
	return cmd
}

func (a *app) runEvents(ctx context.Context, o eventsOptions, services []string) error {
	var until time.Time
	if o.until != "" {
		t, err := parseUntil(o.until, time.Now())
		if err != nil {
			return err
		}
		until = t
	}
	project, c, err := a.projectClient(ctx, services)
	if err != nil {
		return err
	}
	defer c.Close()
	if !until.IsZero() {
		// A timer, not a deadline: a deadline travels with the gRPC stream
		// and may end it with an error before ctx reports it is done.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := time.AfterFunc(time.Until(until), cancel)
		defer stop.Stop()
	}
	var werr error
	err = c.ContainerEvents(ctx, func(ev ctrd.ContainerEvent) {
		if werr == nil && eventSelected(ev, project, services) {
			werr = writeEvent(a.stdout, ev, o.json)
		}
	})
	if err == nil {
		err = werr
	}
	return err
}

// parseUntil reads --until: a time, or a duration from now (compose's
// events reads it the docker way; a duration ahead is what a script wants).
func parseUntil(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(d), nil
	}
	t, err := ctrd.ParseLogTime(v, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("--until: %w", err)
	}
	return t, nil
}

// eventSelected keeps the events of the project's service containers (not
// one-off runs, as compose), of the named services when some are named.
func eventSelected(ev ctrd.ContainerEvent, project string, services []string) bool {
	l := ev.Labels
	if l[engine.LabelProject] != project || strings.EqualFold(l[engine.LabelOneOff], "true") {
		return false
	}
	return len(services) == 0 || slices.Contains(services, l[engine.LabelService])
}

// eventAttributes are docker's: the container's labels but compose's own
// (and stack's), its name and image, and the exit code of a die.
func eventAttributes(ev ctrd.ContainerEvent) map[string]string {
	attrs := map[string]string{}
	for k, v := range ev.Labels {
		if !strings.HasPrefix(k, "com.docker.compose.") && !strings.HasPrefix(k, "dev.stack.") {
			attrs[k] = v
		}
	}
	attrs["name"] = ev.Labels[engine.LabelName]
	attrs["image"] = ev.Image
	if ev.Action == "die" {
		attrs["exitCode"] = strconv.Itoa(ev.ExitCode)
	}
	return attrs
}

// writeEvent prints one event as compose does: a line
// "2006-01-02 15:04:05.000000 container ACTION ID (k=v, ...)", or with
// --json one object with compose's field names.
func writeEvent(w io.Writer, ev ctrd.ContainerEvent, asJSON bool) error {
	attrs := eventAttributes(ev)
	if asJSON {
		b, err := json.Marshal(map[string]any{
			"time":       ev.Time.Local(),
			"type":       "container",
			"service":    ev.Labels[engine.LabelService],
			"id":         ev.ID,
			"action":     ev.Action,
			"attributes": attrs,
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	pairs := make([]string, 0, len(attrs))
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		pairs = append(pairs, k+"="+attrs[k])
	}
	_, err := fmt.Fprintf(w, "%s container %s %s (%s)\n",
		ev.Time.Local().Format("2006-01-02 15:04:05.000000"), ev.Action, ev.ID, strings.Join(pairs, ", "))
	return err
}
