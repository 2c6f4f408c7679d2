package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine/ctrd"
)

func init() { registerCommand(newImageCommand) }

func newImageCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage images: load, import, save, ls, rm, tag, pull, push",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(
		newImageLoadCommand(a),
		newImageImportCommand(a),
		newImageSaveCommand(a),
		newImageListCommand(a),
		newImageRemoveCommand(a),
		newImageTagCommand(a),
		newPullCommand(a),
		newPushCommand(a),
	)
	return cmd
}

func newImageLoadCommand(a *app) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [-i FILE]",
		Short: "Load images from a docker-save or OCI archive (plain or gzip), or from stdin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, closeInput, err := a.openInput(input)
			if err != nil {
				return err
			}
			defer closeInput()
			c, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			loaded, err := c.Load(cmd.Context(), r)
			if err != nil {
				return fmt.Errorf("%w (from %s)", err, inputName(input))
			}
			for _, img := range loaded {
				if img.Named() {
					fmt.Fprintf(a.stdout, "Loaded image: %s\n", ctrd.FamiliarRef(img.Name))
				} else {
					fmt.Fprintf(a.stdout, "Loaded image ID: %s\n", img.Digest)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from an archive file instead of stdin")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress progress output (load prints none)")
	return cmd
}

func inputName(path string) string {
	if path == "" || path == "-" {
		return "stdin"
	}
	return path
}

// openInput opens path, or stdin when path is "" or "-". Reading an archive
// from a terminal is refused: it would only wait for a paste.
func (a *app) openInput(path string) (io.Reader, func(), error) {
	if path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("open archive: %w", err)
		}
		return f, func() { f.Close() }, nil
	}
	if isTerminal(a.stdin) {
		return nil, nil, errors.New("no input: give -i FILE, or pipe an archive to stdin")
	}
	return a.stdin, func() {}, nil
}

// isTerminal reports whether the stream is a character device.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newImageImportCommand(a *app) *cobra.Command {
	var opts ctrd.ImportOptions
	cmd := &cobra.Command{
		Use:   "import FILE|- REF",
		Short: "Create a one-layer image from a root filesystem tarball (plain or gzip), like docker import",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := ctrd.ValidateChanges(opts.Changes); err != nil {
				return err
			}
			r, closeInput, err := a.openInput(args[0])
			if err != nil {
				return err
			}
			defer closeInput()
			c, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			opts.Source = inputName(args[0])
			img, err := c.ImportRootFS(cmd.Context(), r, args[1], opts)
			if err != nil {
				return fmt.Errorf("%w (from %s)", err, opts.Source)
			}
			fmt.Fprintln(a.stdout, img.Digest)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&opts.Changes, "change", "c", nil, "Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)")
	cmd.Flags().StringVarP(&opts.Message, "message", "m", "", "Commit message for the imported image's history")
	return cmd
}

func newImageSaveCommand(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save REF... [-o FILE]",
		Short: "Write images to an OCI archive (docker load reads it too)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && isTerminal(a.stdout) {
				return errors.New("refusing to write an archive to a terminal: give -o FILE or redirect stdout")
			}
			c, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if output == "" {
				return c.SaveImages(cmd.Context(), a.stdout, args)
			}
			return writeFileAtomic(output, func(w io.Writer) error {
				return c.SaveImages(cmd.Context(), w, args)
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file instead of stdout")
	return cmd
}

// writeFileAtomic writes through a temporary file beside path and renames
// it into place, so a failed save leaves no partial archive.
func writeFileAtomic(path string, write func(io.Writer) error) (retErr error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		if retErr != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func newImageListCommand(a *app) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls [REPOSITORY[:TAG]]",
		Aliases: []string{"list"},
		Short:   "List images, or those of one repository",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: use table or json", format)
			}
			c, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			imgs, err := c.ListImages(cmd.Context())
			if err != nil {
				return err
			}
			if len(args) == 1 {
				imgs = filterImages(imgs, args[0])
			}
			switch {
			case quiet:
				printImageIDs(a.stdout, imgs)
			case format == "json":
				return printImagesJSON(a.stdout, imgs, time.Now())
			default:
				printImagesTable(a.stdout, imgs, time.Now())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "Output format: table or json (one object per line)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	return cmd
}

// filterImages keeps the images of one repository (busybox, or
// busybox:latest for one tag), as docker images REPOSITORY does.
func filterImages(imgs []ctrd.ImageSummary, match string) []ctrd.ImageSummary {
	var out []ctrd.ImageSummary
	for _, img := range imgs {
		if img.Repository == match || img.Repository+":"+img.Tag == match || img.Name == match {
			out = append(out, img)
		}
	}
	return out
}

func printImageIDs(w io.Writer, imgs []ctrd.ImageSummary) {
	seen := map[string]bool{}
	for _, img := range imgs {
		if !seen[img.ID()] {
			seen[img.ID()] = true
			fmt.Fprintln(w, img.ID())
		}
	}
}

func printImagesTable(w io.Writer, imgs []ctrd.ImageSummary, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	for _, img := range imgs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", img.Repository, img.Tag, img.ID(), createdSince(img.Created, now), humanSize(img.Size))
	}
	tw.Flush()
}

// imageJSON has the field names of docker images --format json.
type imageJSON struct {
	Repository   string
	Tag          string
	ID           string
	Digest       string
	Name         string
	CreatedAt    string
	CreatedSince string
	Size         string
	SizeBytes    int64
}

func printImagesJSON(w io.Writer, imgs []ctrd.ImageSummary, now time.Time) error {
	enc := json.NewEncoder(w)
	for _, img := range imgs {
		err := enc.Encode(imageJSON{
			Repository: img.Repository, Tag: img.Tag, ID: img.ID(), Digest: img.Digest, Name: img.Name,
			CreatedAt: img.Created.Format("2006-01-02 15:04:05 -0700 MST"), CreatedSince: createdSince(img.Created, now),
			Size: humanSize(img.Size), SizeBytes: img.Size,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func createdSince(t, now time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return units.HumanDuration(now.Sub(t)) + " ago"
}

func humanSize(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }

func newImageRemoveCommand(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm REF...",
		Aliases: []string{"remove", "rmi"},
		Short:   "Remove images (by name or ID), waiting until their content is collected",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var errs []error
			for _, ref := range args {
				names, err := c.RemoveImage(cmd.Context(), ref)
				for _, n := range names {
					fmt.Fprintf(a.stdout, "Untagged: %s\n", ctrd.FamiliarRef(n))
				}
				if err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "Accepted for docker compatibility; removal never asks")
	return cmd
}

func newImageTagCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give an image another name",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.TagImage(cmd.Context(), args[0], args[1])
			return err
		},
	}
}
