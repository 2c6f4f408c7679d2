package compose

import (
	"fmt"
	"os"
	"path"
	"strconv"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/stackdev/stack/engine"
)

// readInputs reads, once per service, the secrets and configs it mounts
// (into b.files) and the env files it uses: all of them feed the hash.
func (b *serviceBuilder) readInputs() []hashInput {
	var inputs []hashInput
	for _, ref := range b.s.Secrets {
		if f, ok := b.file("secrets", "secret", types.FileReferenceConfig(ref)); ok {
			b.files = append(b.files, f)
			inputs = append(inputs, hashInput{kind: "secret", name: f.Name, content: f.Content})
		}
	}
	for _, ref := range b.s.Configs {
		if f, ok := b.file("configs", "config", types.FileReferenceConfig(ref)); ok {
			b.files = append(b.files, f)
			inputs = append(inputs, hashInput{kind: "config", name: f.Name, content: f.Content})
		}
	}
	return append(inputs, b.envFileInputs()...)
}

// file materialises one secret or config reference: its content read now,
// its target, owner and mode (0444 unless given).
func (b *serviceBuilder) file(key, kind string, ref types.FileReferenceConfig) (engine.File, bool) {
	obj, ok := b.m.fileObject(key, ref.Source)
	if !ok {
		return engine.File{}, false // undefined: reported by validate
	}
	content, err := b.m.fileContent(obj)
	if err != nil {
		b.problem(key, "%s %q: %v", kind, ref.Source, err)
		return engine.File{}, false
	}
	f := engine.File{Kind: kind, Name: ref.Source, Target: fileTarget(kind, ref), Content: content, Mode: 0o444}
	f.UID = b.id(key, ref.Source, "uid", ref.UID)
	f.GID = b.id(key, ref.Source, "gid", ref.GID)
	if ref.Mode != nil {
		f.Mode = uint32(*ref.Mode)
	}
	return f, true
}

// fileTarget is /run/secrets/NAME for secrets, /NAME for configs, or the
// target given (relative secret targets land under /run/secrets).
func fileTarget(kind string, ref types.FileReferenceConfig) string {
	t := ref.Target
	if t == "" {
		t = ref.Source
	}
	if path.IsAbs(t) {
		return t
	}
	if kind == "secret" {
		return "/run/secrets/" + t
	}
	return "/" + t
}

func (b *serviceBuilder) id(key, name, field, v string) int {
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.problem(key, "%s: %s %q must be a number", name, field, v)
	}
	return n
}

// fileObject finds the top-level secret or config.
func (m *Model) fileObject(key, name string) (types.FileObjectConfig, bool) {
	if key == "secrets" {
		s, ok := m.project.Secrets[name]
		return types.FileObjectConfig(s), ok
	}
	c, ok := m.project.Configs[name]
	return types.FileObjectConfig(c), ok
}

// fileContent reads a file, environment or content source at load time.
func (m *Model) fileContent(o types.FileObjectConfig) ([]byte, error) {
	switch {
	case o.File != "":
		return readFile(o.File, m.loc.display(o.File))
	case o.Environment != "":
		v, ok := m.project.Environment[o.Environment]
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", o.Environment)
		}
		return []byte(v), nil
	case o.Content != "":
		return []byte(o.Content), nil
	}
	return nil, fmt.Errorf("has no file, environment or content source")
}

// envFileInputs are the env files the service reads, for the hash.
func (b *serviceBuilder) envFileInputs() []hashInput {
	var out []hashInput
	for _, ef := range b.s.EnvFiles {
		content, err := os.ReadFile(ef.Path)
		if err != nil {
			continue // a missing optional env file; a required one fails the load
		}
		out = append(out, hashInput{kind: "env_file", name: ef.Path, content: content})
	}
	return out
}

// hashInputs reads what serviceHash needs for a service.
func (m *Model) hashInputs(s types.ServiceConfig) ([]hashInput, error) {
	p := m.newProblems()
	b := serviceBuilder{m: m, p: p, s: s}
	in := b.readInputs()
	return in, p.err()
}
