package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"strings"

	"github.com/stackdev/stack/engine"
)

// LabelConcerns holds a short hash per concern of the spec a container was
// created from (and one per environment variable), so that a plan can say
// what changed: "environment changed: POSTGRES_DB". It explains only; the
// decision to recreate is the config hash's.
const LabelConcerns = "dev.stack.concerns"

// concernHashes hashes each part of a spec a user edits separately.
func concernHashes(s engine.ContainerSpec) map[string]string {
	p := s.Process
	h := map[string]string{
		"image":               short(s.Image),
		"entrypoint":          short(p.Entrypoint),
		"command":             short(p.Command),
		"process":             short([]any{p.WorkingDir, p.User, p.GroupAdd, p.TTY, p.StdinOpen, p.Init, p.StopSignal, p.StopGracePeriod, p.Hostname, p.Domainname}),
		"labels":              short(userLabels(s.Labels)),
		"annotations":         short(s.Annotations),
		"volumes":             short(s.Mounts),
		"secrets and configs": short(s.Files),
		"networks":            short([]any{s.Network.Mode, s.Network.Networks, s.Network.Expose, s.Network.ExtraHosts, s.Network.DNS, s.Network.DNSSearch, s.Network.DNSOptions}),
		"ports":               short(s.Network.Ports),
		"resources":           short(s.Resources),
		"security":            short(s.Security),
		"restart":             short(s.Restart),
		"healthcheck":         short(s.Health),
		"logging":             short(s.Logging),
	}
	for _, kv := range p.Env {
		k, v, _ := strings.Cut(kv, "=")
		h["env."+k] = short(v)
	}
	return h
}

// userLabels drops the labels stack and compose write themselves.
func userLabels(l map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		if !strings.HasPrefix(k, "com.docker.compose.") && !strings.HasPrefix(k, "dev.stack.") {
			out[k] = v
		}
	}
	return out
}

func short(v any) string {
	b, _ := json.Marshal(v) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:4])
}

// withConcerns returns spec with the concerns label set, on a copy of its
// labels.
func withConcerns(spec engine.ContainerSpec) engine.ContainerSpec {
	b, _ := json.Marshal(concernHashes(spec))
	spec.Labels = maps.Clone(spec.Labels)
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[LabelConcerns] = string(b)
	return spec
}

// configChange says why c's configuration differs from spec, or "" when it
// does not. A container hashed by another version of the hash algorithm is
// compared by its concerns label alone (up to date without one), so an
// upgrade of stack never recreates everything by itself.
func configChange(c engine.Container, spec engine.ContainerSpec) string {
	cv, sv := c.Labels[engine.LabelHashVersion], spec.Labels[engine.LabelHashVersion]
	if cv != "" && sv != "" && cv != sv {
		if r := explainChange(c, spec); r != "config changed" {
			return r
		}
		return ""
	}
	if c.ConfigHash == spec.ConfigHash {
		return ""
	}
	return explainChange(c, spec)
}

// explainChange says what differs between the spec a container was created
// from (its concerns label) and spec; "config changed" when it cannot tell.
func explainChange(c engine.Container, spec engine.ContainerSpec) string {
	var old map[string]string
	if err := json.Unmarshal([]byte(c.Labels[LabelConcerns]), &old); err != nil || len(old) == 0 {
		return "config changed"
	}
	now := concernHashes(spec)
	var concerns, env []string
	for _, k := range sortedKeys(union(old, now)) {
		if old[k] == now[k] {
			continue
		}
		if name, ok := strings.CutPrefix(k, "env."); ok {
			env = append(env, name)
		} else {
			concerns = append(concerns, k+" changed")
		}
	}
	if len(env) > 0 {
		concerns = append([]string{"environment changed: " + strings.Join(env, ", ")}, concerns...)
	}
	if len(concerns) == 0 {
		return "config changed"
	}
	return strings.Join(concerns, "; ")
}

func union(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}
