package compose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// ErrNoComposeFile is returned when no -f is given and default discovery
// finds no compose file.
var ErrNoComposeFile = errors.New("no configuration file provided")

// LoadOptions are the inputs of Load, named after compose's global flags.
// Environment and WorkingDir are injected (the process environment and the
// current directory) so that loading never reads global state.
type LoadOptions struct {
	Files            []string // -f, in order; empty means default discovery
	ProjectName      string   // -p
	ProjectDirectory string   // --project-directory
	EnvFiles         []string // --env-file; empty means <project dir>/.env
	Profiles         []string // --profile; empty means COMPOSE_PROFILES
	Environment      map[string]string
	WorkingDir       string // the current directory; relative paths start here

	// Services selects services (with their dependencies unless NoDeps).
	// Empty means every service enabled by the active profiles.
	Services []string
	NoDeps   bool
	// Scale overrides scale / deploy.replicas per service.
	Scale map[string]int
	// Version is written in the com.docker.compose.version label.
	Version string
}

// Load reads the compose files as docker compose does and returns what they
// ask the host to run. Every problem found is reported at once, each error
// naming the file, the service and the key.
func Load(ctx context.Context, opts LoadOptions) (Desired, error) {
	d, _, err := loadDesired(ctx, opts)
	return d, err
}

// loadDesired is Load, also returning the model it came from.
func loadDesired(ctx context.Context, opts LoadOptions) (Desired, *Model, error) {
	m, p, err := loadModel(ctx, opts)
	if err != nil {
		return Desired{}, nil, err
	}
	d := m.desired(p)
	if err := p.err(); err != nil {
		return Desired{}, nil, err
	}
	return d, m, nil
}

// loadInputs are the resolved decisions compose makes before parsing: which
// files, which directory, which environment and which profiles.
type loadInputs struct {
	cwd        string
	files      []string
	projectDir string
	envFiles   []string
	env        map[string]string
	profiles   []string
}

func resolveInputs(opts LoadOptions) (loadInputs, error) {
	in := loadInputs{cwd: opts.WorkingDir, env: maps.Clone(opts.Environment)}
	if in.cwd == "" {
		return in, fmt.Errorf("load compose files: no working directory given")
	}
	if in.env == nil {
		in.env = map[string]string{}
	}
	explicit := absAll(in.cwd, opts.Files)
	baseDir := envBaseDir(in.cwd, opts.ProjectDirectory, explicit)
	if err := in.readEnvFiles(baseDir, opts.EnvFiles); err != nil {
		return in, err
	}
	files, err := in.composeFiles(explicit, baseDir)
	if err != nil {
		return in, err
	}
	in.files = files
	in.projectDir = filepath.Dir(files[0])
	if opts.ProjectDirectory != "" {
		in.projectDir = absFrom(in.cwd, opts.ProjectDirectory)
	}
	in.profiles = opts.Profiles
	if len(in.profiles) == 0 {
		in.profiles = splitList(in.env["COMPOSE_PROFILES"], ",")
	}
	return in, nil
}

// envBaseDir is where compose looks for the default .env file: the project
// directory when given, else the directory of the first -f file, else cwd.
func envBaseDir(cwd, projectDir string, files []string) string {
	switch {
	case projectDir != "":
		return absFrom(cwd, projectDir)
	case len(files) > 0:
		return filepath.Dir(files[0])
	default:
		return cwd
	}
}

// readEnvFiles adds the --env-file (or default .env) variables to the
// environment; variables already set in the environment win, as in compose.
func (in *loadInputs) readEnvFiles(baseDir string, given []string) error {
	in.envFiles = absAll(in.cwd, given)
	if len(given) == 0 {
		in.envFiles = defaultEnvFile(baseDir, in.env)
	}
	for _, f := range in.envFiles {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("env file %s: %w (check --env-file)", f, err)
		}
	}
	values, err := dotenv.GetEnvFromFile(in.env, in.envFiles)
	if err != nil {
		return fmt.Errorf("read env files: %w", err)
	}
	for k, v := range values {
		if _, set := in.env[k]; !set {
			in.env[k] = v
		}
	}
	return nil
}

func defaultEnvFile(dir string, env map[string]string) []string {
	if disabled, err := strconv.ParseBool(env["COMPOSE_DISABLE_ENV_FILE"]); err == nil && disabled {
		return nil
	}
	f := filepath.Join(dir, ".env")
	if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
		return []string{f}
	}
	return nil
}

// composeFiles returns the -f files, else COMPOSE_FILE, else the files
// found by compose's default discovery from dir upwards.
func (in *loadInputs) composeFiles(explicit []string, dir string) ([]string, error) {
	if len(explicit) > 0 {
		return explicit, nil
	}
	if v := in.env["COMPOSE_FILE"]; v != "" {
		sep := in.env["COMPOSE_PATH_SEPARATOR"]
		if sep == "" {
			sep = string(os.PathListSeparator)
		}
		return absAll(in.cwd, splitList(v, sep)), nil
	}
	return discover(dir)
}

// discover looks for compose.yaml (and its override) in dir and its parents.
func discover(dir string) ([]string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if f := firstExisting(d, cli.DefaultFileNames); f != "" {
			files := []string{f}
			if o := firstExisting(d, cli.DefaultOverrideFileNames); o != "" {
				files = append(files, o)
			}
			return files, nil
		}
		if filepath.Dir(d) == d {
			return nil, fmt.Errorf("%w: not found in %s or its parents (create compose.yaml or pass -f)", ErrNoComposeFile, dir)
		}
	}
}

func firstExisting(dir string, names []string) string {
	for _, n := range names {
		f := filepath.Join(dir, n)
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
			return f
		}
	}
	return ""
}

// projectOptions turns the resolved inputs into compose-go's options.
func (in loadInputs) projectOptions(name string, extra ...func(*loader.Options)) (*cli.ProjectOptions, error) {
	if name == "" {
		name = in.env["COMPOSE_PROJECT_NAME"]
	}
	if err := checkProjectName(name); name != "" && err != nil {
		return nil, err
	}
	o, err := cli.NewProjectOptions(in.files,
		cli.WithWorkingDirectory(in.projectDir),
		cli.WithName(name),
		cli.WithProfiles(in.profiles),
		cli.WithLoadOptions(extra...),
		cli.WithLoadOptions(func(lo *loader.Options) { lo.SkipConsistencyCheck = true }),
	)
	if err != nil {
		return nil, err
	}
	o.Environment = types.Mapping(in.env)
	o.EnvFiles = in.envFiles
	return o, nil
}

func absAll(dir string, paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, absFrom(dir, p))
	}
	return out
}

func absFrom(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

func splitList(v, sep string) []string {
	var out []string
	for _, s := range strings.Split(v, sep) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ProjectName resolves the project name as compose does, for commands that
// work from labels (ps, down, logs): -p, else COMPOSE_PROJECT_NAME, else the
// compose files' name: (or their directory), else — with no compose file —
// the name of the project or current directory.
func ProjectName(ctx context.Context, opts LoadOptions) (string, error) {
	if n := opts.ProjectName; n != "" {
		return n, checkProjectName(n)
	}
	if n := opts.Environment["COMPOSE_PROJECT_NAME"]; n != "" {
		return n, checkProjectName(n)
	}
	in, err := resolveInputs(opts)
	if err != nil {
		if !errors.Is(err, ErrNoComposeFile) {
			return "", err
		}
		dir := envBaseDir(in.cwd, opts.ProjectDirectory, nil)
		return loader.NormalizeProjectName(filepath.Base(dir)), nil
	}
	if n := in.env["COMPOSE_PROJECT_NAME"]; n != "" {
		return n, checkProjectName(n)
	}
	if n, ok := declaredName(in.files); ok {
		if n == "" {
			n = loader.NormalizeProjectName(filepath.Base(in.projectDir))
		}
		return n, nil
	}
	m, err := LoadModel(ctx, opts)
	if err != nil {
		return "", err
	}
	return m.Name(), nil
}

// declaredName reads the top-level name: of the compose files (the last
// file that sets one wins) without a full load, so that commands which
// only need the project name (ps, logs, down) skip compose-go. ok is false
// when the name needs interpolation or a file does not parse: the full
// load then decides, and reports any error properly.
func declaredName(files []string) (name string, ok bool) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", false
		}
		var top struct {
			Name string `yaml:"name"`
		}
		if err := yaml.Unmarshal(b, &top); err != nil {
			return "", false
		}
		if top.Name != "" {
			name = top.Name
		}
	}
	if strings.Contains(name, "$") || (name != "" && checkProjectName(name) != nil) {
		return "", false
	}
	return name, true
}

func checkProjectName(n string) error {
	if n != loader.NormalizeProjectName(n) {
		return fmt.Errorf("%w (use lowercase letters, digits, '-' and '_')", loader.InvalidProjectNameErr(n))
	}
	return nil
}
