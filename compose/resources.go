package compose

import (
	"math"
	"slices"
	"strconv"

	"github.com/stackdev/stack/engine"
)

// resources are the cgroup limits: the top-level keys, with
// deploy.resources filling what they leave unset. A cpus reservation has no
// cgroup equivalent outside swarm; it becomes a relative CPU weight
// (cpu_shares = cpus × 1024) when cpu_shares is not set.
func (b *serviceBuilder) resources() engine.Resources {
	s := b.s
	r := engine.Resources{
		MemoryLimit:       int64(s.MemLimit),
		MemoryReservation: int64(s.MemReservation),
		MemorySwap:        int64(s.MemSwapLimit),
		NanoCPUs:          scaled(s.CPUS, 1e9),
		CPUShares:         s.CPUShares,
		CPUSet:            s.CPUSet,
		PidsLimit:         s.PidsLimit,
		ShmSize:           int64(s.ShmSize),
		Ulimits:           b.ulimits(),
		Devices:           b.devices(),
	}
	b.deployResources(&r)
	return r
}

func (b *serviceBuilder) deployResources(r *engine.Resources) {
	if b.s.Deploy == nil {
		return
	}
	if l := b.s.Deploy.Resources.Limits; l != nil {
		setIfZero(&r.MemoryLimit, int64(l.MemoryBytes))
		setIfZero(&r.NanoCPUs, scaled(l.NanoCPUs.Value(), 1e9))
		setIfZero(&r.PidsLimit, l.Pids)
	}
	if res := b.s.Deploy.Resources.Reservations; res != nil {
		setIfZero(&r.MemoryReservation, int64(res.MemoryBytes))
		setIfZero(&r.CPUShares, scaled(res.NanoCPUs.Value(), 1024))
	}
}

// scaled multiplies a float32 CPU count as written ("0.1" gives exactly
// 100000000 nano CPUs, not the float32 error's 100000001).
func scaled(f float32, unit float64) int64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'f', -1, 32), 64)
	return int64(math.Round(v * unit))
}

func setIfZero(dst *int64, v int64) {
	if *dst == 0 {
		*dst = v
	}
}

// ulimits are sorted by name; a single value sets both soft and hard.
func (b *serviceBuilder) ulimits() []engine.Ulimit {
	var out []engine.Ulimit
	for _, name := range sortedKeys(b.s.Ulimits) {
		u := b.s.Ulimits[name]
		if u == nil {
			continue
		}
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		if soft > hard {
			b.problem("ulimits", "%s: soft limit %d is above hard limit %d", name, soft, hard)
		}
		out = append(out, engine.Ulimit{Name: name, Soft: soft, Hard: hard})
	}
	return out
}

// devices map host devices; permissions default to rwm.
func (b *serviceBuilder) devices() []engine.Device {
	var out []engine.Device
	for _, d := range b.s.Devices {
		dev := engine.Device{Host: d.Source, Container: d.Target, Permissions: d.Permissions}
		if dev.Container == "" {
			dev.Container = dev.Host
		}
		if dev.Permissions == "" {
			dev.Permissions = "rwm"
		}
		out = append(out, dev)
	}
	return slices.Clip(out)
}
