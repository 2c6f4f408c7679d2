package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// Model is a loaded, validated and normalised compose project. It is what
// `stack config` prints and what Desired is computed from; the compose-go
// types stay inside it.
type Model struct {
	project *types.Project
	in      loadInputs
	opts    LoadOptions
	loc     *locator
	// deselected are services left out by the selection (not by profiles):
	// depending on them is fine, they are just not touched.
	deselected map[string]bool
}

// LoadModel finds, merges, interpolates and validates the compose files and
// applies profiles, the service selection and scale overrides. It reports
// the same errors as Load: a model that loads can be run.
func LoadModel(ctx context.Context, opts LoadOptions) (*Model, error) {
	m, p, err := loadModel(ctx, opts)
	if err != nil {
		return nil, err
	}
	m.desired(p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return m, nil
}

// loadModel returns the model and the problems validation found; err is
// set only when no model could be built at all.
func loadModel(ctx context.Context, opts LoadOptions) (*Model, *problems, error) {
	in, err := resolveInputs(opts)
	if err != nil {
		return nil, nil, err
	}
	loc := newLocator(in.projectDir, in.files)
	if len(unknownKeys(loc)) > 0 {
		return nil, nil, fileErrors(loc, in.env)
	}
	var unsup unsupported
	po, err := in.projectOptions(opts.ProjectName, unsup.option())
	if err != nil {
		return nil, nil, err
	}
	project, err := po.LoadProject(ctx)
	if err != nil {
		if all := fileErrors(loc, in.env); all != nil {
			return nil, nil, all
		}
		return nil, nil, loadError(ctx, in, opts, loc, err)
	}
	m := &Model{project: project, in: in, opts: opts, loc: loc}
	if err := m.selectServices(); err != nil {
		return nil, nil, err
	}
	m.applyScale()
	p := m.newProblems()
	m.validate(p, &unsup)
	return m, p, nil
}

// loadError names the file a compose-go error comes from. compose-go names
// it for parse and schema errors; for the others (interpolation, merge) each
// file is tried alone to find the culprit.
func loadError(ctx context.Context, in loadInputs, opts LoadOptions, loc *locator, err error) error {
	var culpritFile string
	var errs []error
	for _, e := range flatten(err) {
		msg := e.Error()
		named := false
		for _, f := range in.files {
			if strings.Contains(msg, f) {
				msg = strings.ReplaceAll(msg, f, loc.display(f))
				named = true
			}
		}
		if !named {
			if culpritFile == "" {
				culpritFile = culprit(ctx, in, opts)
			}
			msg = loc.display(culpritFile) + ": " + msg
		}
		errs = append(errs, &loadErr{msg: msg, err: e})
	}
	p := problems{errs: errs}
	return p.err()
}

// flatten lists the errors joined in err (compose-go joins interpolation
// errors), so each gets its file name.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// culprit returns the first compose file that fails to load on its own, or
// the first file when each loads alone.
func culprit(ctx context.Context, in loadInputs, opts LoadOptions) string {
	if len(in.files) > 1 {
		for _, f := range in.files {
			one := in
			one.files = []string{f}
			po, err := one.projectOptions(opts.ProjectName)
			if err != nil {
				continue
			}
			if _, err := po.LoadProject(ctx); err != nil {
				return f
			}
		}
	}
	return in.files[0]
}

type loadErr struct {
	msg string
	err error
}

func (e *loadErr) Error() string   { return e.msg }
func (e *loadErr) Unwrap() []error { return []error{e.err, ErrInvalid} }

// selectServices keeps the selected services and, unless NoDeps, what they
// depend on. A selected service disabled by profiles is enabled, as compose
// does.
func (m *Model) selectServices() error {
	names := m.opts.Services
	if len(names) == 0 {
		return nil
	}
	for _, n := range names {
		_, on := m.project.Services[n]
		_, off := m.project.DisabledServices[n]
		if !on && !off {
			return fmt.Errorf("no such service: %s (known: %s): %w", n, strings.Join(m.allServiceNames(), ", "), ErrInvalid)
		}
	}
	p, err := m.project.WithServicesEnabled(names...)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, n := range names {
		m.closure(p, n, keep)
	}
	m.deselected = map[string]bool{}
	for n, s := range p.Services {
		if !keep[n] {
			delete(p.Services, n)
			p.DisabledServices[n] = s
			m.deselected[n] = true
		}
	}
	m.project = p
	return nil
}

func (m *Model) closure(p *types.Project, name string, keep map[string]bool) {
	if keep[name] {
		return
	}
	keep[name] = true
	if m.opts.NoDeps {
		return
	}
	for dep := range p.Services[name].DependsOn {
		if _, ok := p.Services[dep]; ok {
			m.closure(p, dep, keep)
		}
	}
}

func (m *Model) allServiceNames() []string {
	var out []string
	for n := range m.project.AllServices() {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// applyScale applies the Scale overrides (stack up --scale).
func (m *Model) applyScale() {
	for name, n := range m.opts.Scale {
		if s, ok := m.project.Services[name]; ok {
			s.SetScale(n)
			m.project.Services[name] = s
		}
	}
}

// Name is the project name.
func (m *Model) Name() string { return m.project.Name }

// ServiceNames lists the active services, in dependency order.
func (m *Model) ServiceNames() []string {
	order, _ := dependencyOrder(m.project)
	return order
}

// VolumeNames lists the keys of the top-level volumes.
func (m *Model) VolumeNames() []string { return sortedKeys(m.project.Volumes) }

// NetworkNames lists the keys of the top-level networks.
func (m *Model) NetworkNames() []string { return sortedKeys(m.project.Networks) }

// Images lists each active service's image as written (as compose config
// --images does), in service order.
func (m *Model) Images() []string {
	var out []string
	for _, n := range m.ServiceNames() {
		out = append(out, m.project.Services[n].Image)
	}
	return out
}

// Profiles lists every profile declared by a service, sorted.
func (m *Model) Profiles() []string {
	set := map[string]bool{}
	for _, s := range m.project.AllServices() {
		for _, p := range s.Profiles {
			set[p] = true
		}
	}
	return sortedKeys(set)
}

// YAML renders the normalised model as compose config does.
func (m *Model) YAML() ([]byte, error) { return m.project.MarshalYAML() }

// JSON renders the normalised model as JSON.
func (m *Model) JSON() ([]byte, error) { return m.project.MarshalJSON() }

// ServiceHash returns the config hash of an active service, the value its
// containers carry in com.docker.compose.config-hash.
func (m *Model) ServiceHash(name string) (string, error) {
	s, ok := m.project.Services[name]
	if !ok {
		return "", fmt.Errorf("no such service: %s: %w", name, ErrInvalid)
	}
	in, err := m.hashInputs(s)
	if err != nil {
		return "", err
	}
	return serviceHash(s, in)
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// readFile reads a file referenced by the model, mapping "does not exist" to
// a message that says which file.
func readFile(path, display string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("file %s does not exist", display)
	}
	return b, err
}

// runnable returns an active service, or one left out by --no-deps style
// selection (whose containers exist and may be referred to).
func (m *Model) runnable(name string) (types.ServiceConfig, bool) {
	if s, ok := m.project.Services[name]; ok {
		return s, true
	}
	if m.deselected[name] {
		s, ok := m.project.DisabledServices[name]
		return s, ok
	}
	return types.ServiceConfig{}, false
}
