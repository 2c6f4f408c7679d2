package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/containerd/platforms"
	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func init() {
	registerCommand(newTopCommand)
	registerCommand(newPortCommand)
	registerCommand(newImagesCommand)
}

func newTopCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "top [SERVICE...]",
		Short: "Display the running processes of each container",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return a.withContainers(ctx, args, isLive, func(c *ctrd.Client, ctrs []engine.Container) error {
				for _, ctr := range ctrs {
					procs, err := c.TopContainer(ctx, ctr.ID)
					if err != nil {
						return fmt.Errorf("%s: %w", ctr.Name, err)
					}
					if err := renderTop(a.stdout, ctr.Name, procs); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
}

// renderTop prints one container's processes as compose's top does: the
// name, ps -ef's columns, a blank line.
func renderTop(w io.Writer, name string, procs []ctrd.TopProcess) error {
	fmt.Fprintln(w, name)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "UID\tPID\tPPID\tC\tSTIME\tTTY\tTIME\tCMD")
	for _, p := range procs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", p.UID, p.PID, p.PPID, p.C, p.STIME, p.TTY, p.TIME, p.CMD)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w)
	return err
}

func newPortCommand(a *app) *cobra.Command {
	var index int
	var protocol string
	cmd := &cobra.Command{
		Use:   "port [OPTIONS] SERVICE PRIVATE_PORT",
		Short: "Print the public address for a port binding",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			port, err := strconv.ParseUint(args[1], 10, 16)
			if err != nil || port == 0 {
				return fmt.Errorf("invalid port %q: use a number between 1 and 65535", args[1])
			}
			all := func(engine.Container) bool { return true }
			return a.withContainers(cmd.Context(), args[:1], all, func(_ *ctrd.Client, ctrs []engine.Container) error {
				ctr, err := replica(ctrs, args[0], index)
				if err != nil {
					return err
				}
				addr, err := publishedAddress(ctr, uint16(port), protocol)
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, addr)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&index, "index", 0, "Index of the container if service has multiple replicas")
	cmd.Flags().StringVar(&protocol, "protocol", "tcp", "tcp or udp")
	return cmd
}

// replica picks the service's container numbered index (1 when 0).
func replica(ctrs []engine.Container, service string, index int) (engine.Container, error) {
	if index == 0 {
		index = 1
	}
	for _, c := range ctrs {
		if c.Number == index {
			return c, nil
		}
	}
	if len(ctrs) == 0 {
		return engine.Container{}, fmt.Errorf("service %q has no container: run `stack up` first", service)
	}
	return engine.Container{}, fmt.Errorf("service %q has no container number %d: it has %d", service, index, len(ctrs))
}

// publishedAddress is HOST_IP:HOST_PORT of the binding of port/protocol.
func publishedAddress(c engine.Container, port uint16, protocol string) (string, error) {
	if protocol != "tcp" && protocol != "udp" {
		return "", fmt.Errorf("invalid --protocol %q: use tcp or udp", protocol)
	}
	for _, p := range c.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		if p.ContainerPort == port && proto == protocol {
			return fmt.Sprintf("%s:%d", hostIP(p), p.HostPort), nil
		}
	}
	return "", fmt.Errorf("no port %d/%s published for container %s", port, protocol, c.Name)
}

func newImagesCommand(a *app) *cobra.Command {
	var quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [SERVICE...]",
		Short: "List images used by the created containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			all := func(engine.Container) bool { return true }
			return a.withContainers(ctx, args, all, func(c *ctrd.Client, ctrs []engine.Container) error {
				imgs, err := c.ListImages(ctx)
				if err != nil {
					return err
				}
				switch {
				case quiet || format == "table" || format == "":
					return renderImages(a.stdout, ctrs, imgs, quiet)
				case format == "json":
					return renderImagesJSON(a.stdout, ctrs, imgs)
				}
				return fmt.Errorf("unknown --format %q: use table or json", format)
			})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	cmd.Flags().StringVar(&format, "format", "table", "Output format: table or json")
	return cmd
}

// renderImages prints each container's image: the one named as the
// container's image and with its digest, else any with its digest.
func renderImages(w io.Writer, ctrs []engine.Container, imgs []ctrd.ImageSummary, quiet bool) error {
	if quiet {
		seen := map[string]bool{}
		for _, c := range ctrs {
			if img, ok := imageOf(c, imgs); ok && !seen[img.ID()] {
				seen[img.ID()] = true
				fmt.Fprintln(w, img.ID())
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE")
	for _, c := range ctrs {
		img, ok := imageOf(c, imgs)
		if !ok {
			repo, tag, _ := strings.Cut(shortImage(c.Image), ":")
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, repo, tag, "<missing>", "")
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, img.Repository, img.Tag, img.ID(), humanSize(img.Size))
	}
	return tw.Flush()
}

// projectImageJSON has the fields of compose's `images --format json` objects.
type projectImageJSON struct {
	ID            string     `json:"ID"`
	ContainerName string     `json:"ContainerName"`
	Repository    string     `json:"Repository"`
	Tag           string     `json:"Tag"`
	Platform      string     `json:"Platform"`
	Size          int64      `json:"Size"`
	Created       *time.Time `json:"Created,omitempty"`
}

// renderImagesJSON prints one JSON array, as compose does. stack runs
// images of the host's platform only.
func renderImagesJSON(w io.Writer, ctrs []engine.Container, imgs []ctrd.ImageSummary) error {
	list := []projectImageJSON{}
	for _, c := range ctrs {
		img, ok := imageOf(c, imgs)
		if !ok {
			continue
		}
		j := projectImageJSON{ID: img.Digest, ContainerName: c.Name, Repository: img.Repository, Tag: img.Tag,
			Platform: platforms.Format(platforms.DefaultSpec()), Size: img.Size}
		if !img.Created.IsZero() {
			j.Created = &img.Created
		}
		list = append(list, j)
	}
	data, err := json.Marshal(list)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(data))
	return err
}

func imageOf(c engine.Container, imgs []ctrd.ImageSummary) (ctrd.ImageSummary, bool) {
	var found *ctrd.ImageSummary
	for i, img := range imgs {
		if c.ImageID != "" && img.Digest != c.ImageID {
			continue
		}
		if img.Name == c.Image {
			return img, true
		}
		if found == nil && c.ImageID != "" {
			found = &imgs[i]
		}
	}
	if found == nil {
		return ctrd.ImageSummary{}, false
	}
	return *found, true
}

// withContainers hands fn the project's service containers of the named
// services (all when none) that keep accepts, sorted by name.
func (a *app) withContainers(ctx context.Context, services []string, keep func(engine.Container) bool, fn func(*ctrd.Client, []engine.Container) error) error {
	project, c, err := a.projectClient(ctx, services)
	if err != nil {
		return err
	}
	defer c.Close()
	ctrs, err := a.selectContainers(ctx, c, project, services, false, keep)
	if err != nil {
		return err
	}
	return fn(c, ctrs)
}
