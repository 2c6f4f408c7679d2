package compose

import (
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/stackdev/stack/engine"
)

// mounts are the service's volumes, the tmpfs key and the mounts shared
// through volumes_from.
func (b *serviceBuilder) mounts() []engine.Mount {
	out := b.volumeMounts(b.s)
	out = append(out, b.tmpfsMounts()...)
	out = append(out, b.volumesFrom(b.s, map[string]bool{b.s.Name: true})...)
	return out
}

func (b *serviceBuilder) volumeMounts(s types.ServiceConfig) []engine.Mount {
	var out []engine.Mount
	for _, v := range s.Volumes {
		if m, ok := b.volumeMount(v); ok {
			out = append(out, m)
		}
	}
	return out
}

func (b *serviceBuilder) volumeMount(v types.ServiceVolumeConfig) (engine.Mount, bool) {
	m := engine.Mount{Target: v.Target, ReadOnly: v.ReadOnly}
	switch v.Type {
	case types.VolumeTypeVolume:
		m.Type = engine.MountVolume
		m.Source = b.volumeName(v.Source)
		m.NoCopy = v.Volume != nil && v.Volume.NoCopy
	case types.VolumeTypeBind:
		m.Type = engine.MountBind
		m.Source = v.Source
		m.CreateHostPath = v.Bind == nil || bool(v.Bind.CreateHostPath)
		if v.Bind != nil {
			m.Propagation = v.Bind.Propagation
		}
	case types.VolumeTypeTmpfs:
		m.Type = engine.MountTmpfs
		if v.Tmpfs != nil {
			m.TmpfsSize = int64(v.Tmpfs.Size)
			m.TmpfsMode = v.Tmpfs.Mode
		}
	default:
		b.problem("volumes", "type %q is not supported (use volume, bind or tmpfs)", v.Type)
		return m, false
	}
	return m, true
}

// volumeName is the engine name of a named volume ("" for an anonymous one).
func (b *serviceBuilder) volumeName(key string) string {
	if key == "" {
		return ""
	}
	if v, ok := b.m.project.Volumes[key]; ok && v.Name != "" {
		return v.Name
	}
	return b.m.project.Name + "_" + key
}

// tmpfsMounts parses the tmpfs key: "/path" or "/path:size=64m,mode=1777".
func (b *serviceBuilder) tmpfsMounts() []engine.Mount {
	var out []engine.Mount
	for _, t := range b.s.Tmpfs {
		target, opts, _ := strings.Cut(t, ":")
		m := engine.Mount{Type: engine.MountTmpfs, Target: target}
		for _, o := range splitList(opts, ",") {
			b.tmpfsOption(&m, o)
		}
		out = append(out, m)
	}
	return out
}

func (b *serviceBuilder) tmpfsOption(m *engine.Mount, o string) {
	k, v, _ := strings.Cut(o, "=")
	switch k {
	case "size":
		var u types.UnitBytes
		if err := u.DecodeMapstructure(v); err != nil {
			b.problem("tmpfs", "%s: size %q: %v", m.Target, v, err)
		}
		m.TmpfsSize = int64(u)
	case "mode":
		mode, err := strconv.ParseUint(v, 8, 32)
		if err != nil {
			b.problem("tmpfs", "%s: mode %q must be octal (1777)", m.Target, v)
		}
		m.TmpfsMode = uint32(mode)
	case "ro":
		m.ReadOnly = true
	case "rw":
	default:
		b.problem("tmpfs", "%s: option %q is not supported (use size, mode, ro)", m.Target, o)
	}
}

// volumesFrom copies the volume and bind mounts of the services named in
// volumes_from ("svc" or "svc:ro"), following their own volumes_from.
func (b *serviceBuilder) volumesFrom(s types.ServiceConfig, seen map[string]bool) []engine.Mount {
	var out []engine.Mount
	for _, ref := range s.VolumesFrom {
		parts := strings.Split(ref, ":")
		if parts[0] == "container" {
			b.problem("volumes_from", "%q: sharing the volumes of a container outside the project is not supported yet (use service names)", ref)
			continue
		}
		from, ok := b.m.runnable(parts[0])
		if !ok || seen[from.Name] {
			continue // undefined: reported by validate
		}
		seen[from.Name] = true
		ro := len(parts) > 1 && parts[1] == "ro"
		for _, m := range append(b.volumeMounts(from), b.volumesFrom(from, seen)...) {
			if m.Type != engine.MountTmpfs && m.Source != "" {
				m.ReadOnly = m.ReadOnly || ro
				out = append(out, m)
			}
		}
	}
	return out
}

// volumeNames are the engine names of the named volumes the service mounts.
func (b *serviceBuilder) volumeNames() []string {
	var out []string
	for _, m := range b.mounts() {
		if m.Type == engine.MountVolume && m.Source != "" && !containsString(out, m.Source) {
			out = append(out, m.Source)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
