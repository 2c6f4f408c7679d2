package ctrd

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// changeInstructions are the Dockerfile instructions `image import
// --change` accepts, as docker import does.
var changeInstructions = map[string]func(*ocispec.ImageConfig, string) error{
	"CMD":        func(c *ocispec.ImageConfig, v string) (err error) { c.Cmd, err = commandForm(v); return err },
	"ENTRYPOINT": func(c *ocispec.ImageConfig, v string) (err error) { c.Entrypoint, err = commandForm(v); return err },
	"ENV":        changeEnv,
	"LABEL":      changeLabel,
	"EXPOSE":     changeExpose,
	"VOLUME":     changeVolume,
	"WORKDIR":    changeWorkdir,
	"USER":       func(c *ocispec.ImageConfig, v string) error { c.User = v; return nil },
	"STOPSIGNAL": func(c *ocispec.ImageConfig, v string) error { c.StopSignal = v; return nil },
}

const supportedChanges = "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR"

// ApplyChanges applies Dockerfile-style instructions ("ENV K=V") to cfg.
func ApplyChanges(cfg ocispec.ImageConfig, changes []string) (ocispec.ImageConfig, error) {
	for _, ch := range changes {
		instr, value, _ := strings.Cut(strings.TrimSpace(ch), " ")
		value = strings.TrimSpace(value)
		apply, ok := changeInstructions[strings.ToUpper(instr)]
		if !ok {
			return cfg, fmt.Errorf("unknown --change instruction %q in %q (supported: %s)", instr, ch, supportedChanges)
		}
		if value == "" {
			return cfg, fmt.Errorf("--change %q: %s needs a value", ch, strings.ToUpper(instr))
		}
		if err := apply(&cfg, value); err != nil {
			return cfg, fmt.Errorf("--change %q: %w", ch, err)
		}
	}
	return cfg, nil
}

// commandForm parses the exec form (["a","b"]) or the shell form (a b),
// which runs under /bin/sh -c like in a Dockerfile.
func commandForm(v string) ([]string, error) {
	if strings.HasPrefix(v, "[") {
		var args []string
		if err := json.Unmarshal([]byte(v), &args); err != nil {
			return nil, fmt.Errorf("exec form must be a JSON array of strings: %w", err)
		}
		return args, nil
	}
	return []string{"/bin/sh", "-c", v}, nil
}

func changeEnv(c *ocispec.ImageConfig, v string) error {
	pairs, err := keyValues(v)
	if err != nil {
		return err
	}
	for _, kv := range pairs {
		c.Env = setEnv(c.Env, kv[0], kv[1])
	}
	return nil
}

func setEnv(env []string, key, value string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

func changeLabel(c *ocispec.ImageConfig, v string) error {
	pairs, err := keyValues(v)
	if err != nil {
		return err
	}
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	for _, kv := range pairs {
		c.Labels[kv[0]] = kv[1]
	}
	return nil
}

// keyValues parses "K=V K2='v 2'" or the legacy single "K some value".
func keyValues(v string) ([][2]string, error) {
	words, err := splitWords(v)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(words[0], "=") {
		key, rest, _ := strings.Cut(v, " ")
		return [][2]string{{key, strings.TrimSpace(rest)}}, nil
	}
	out := make([][2]string, 0, len(words))
	for _, w := range words {
		k, val, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", w)
		}
		out = append(out, [2]string{k, val})
	}
	return out, nil
}

func changeExpose(c *ocispec.ImageConfig, v string) error {
	if c.ExposedPorts == nil {
		c.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range strings.Fields(v) {
		port, proto, _ := strings.Cut(p, "/")
		if proto == "" {
			proto = "tcp"
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
			return fmt.Errorf("%q is not a port (like 80 or 53/udp)", p)
		}
		c.ExposedPorts[fmt.Sprintf("%d/%s", n, proto)] = struct{}{}
	}
	return nil
}

func changeVolume(c *ocispec.ImageConfig, v string) error {
	paths := strings.Fields(v)
	if strings.HasPrefix(v, "[") {
		if err := json.Unmarshal([]byte(v), &paths); err != nil {
			return fmt.Errorf("VOLUME must be paths or a JSON array: %w", err)
		}
	}
	if c.Volumes == nil {
		c.Volumes = map[string]struct{}{}
	}
	for _, p := range paths {
		c.Volumes[p] = struct{}{}
	}
	return nil
}

// changeWorkdir resolves a relative WORKDIR against the previous one.
func changeWorkdir(c *ocispec.ImageConfig, v string) error {
	if !path.IsAbs(v) {
		base := c.WorkingDir
		if base == "" {
			base = "/"
		}
		v = path.Join(base, v)
	}
	c.WorkingDir = path.Clean(v)
	return nil
}

// splitWords splits on blanks, honouring single and double quotes and
// backslash escapes, as a Dockerfile does for ENV and LABEL.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	var quote rune
	inWord, escaped := false, false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("empty value")
	}
	return words, nil
}

// ValidateChanges checks --change instructions before any input is read.
func ValidateChanges(changes []string) error {
	_, err := ApplyChanges(ocispec.ImageConfig{}, changes)
	return err
}
