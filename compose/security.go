package compose

import (
	"slices"
	"strings"

	"github.com/stackdev/stack/engine"
)

// security holds privileges, capabilities and namespace sharing.
func (b *serviceBuilder) security() engine.Security {
	s := b.s
	return engine.Security{
		Privileged:      s.Privileged,
		ReadOnlyRootfs:  s.ReadOnly,
		CapAdd:          slices.Clone(s.CapAdd),
		CapDrop:         slices.Clone(s.CapDrop),
		NoNewPrivileges: b.noNewPrivileges(),
		Sysctls:         copyMap(s.Sysctls),
		IPC:             b.namespace("ipc", s.Ipc, "private", "shareable", "host"),
		PID:             b.namespace("pid", s.Pid, "host"),
	}
}

// noNewPrivileges reads security_opt, the only option stack applies;
// others (seccomp, apparmor, label) are errors rather than ignored.
func (b *serviceBuilder) noNewPrivileges() bool {
	on := false
	for _, opt := range b.s.SecurityOpt {
		name, val, hasVal := cutAny(opt, ":=")
		if name != "no-new-privileges" {
			b.problem("security_opt", "%q is not supported yet (only no-new-privileges)", opt)
			continue
		}
		switch {
		case !hasVal || val == "true":
			on = true
		case val == "false":
			on = false
		default:
			b.problem("security_opt", "%q: use no-new-privileges:true or :false", opt)
		}
	}
	return on
}

func cutAny(s, seps string) (string, string, bool) {
	if i := strings.IndexAny(s, seps); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// namespace maps ipc / pid: a plain mode, service:NAME (its first replica)
// or container:NAME.
func (b *serviceBuilder) namespace(key, v string, modes ...string) string {
	switch {
	case v == "" || slices.Contains(modes, v) || strings.HasPrefix(v, "container:"):
		return v
	case strings.HasPrefix(v, "service:"):
		return b.m.serviceContainer(strings.TrimPrefix(v, "service:"))
	}
	b.problem(key, "%q is not supported (use %s, service:NAME or container:NAME)", v, strings.Join(modes, ", "))
	return ""
}
