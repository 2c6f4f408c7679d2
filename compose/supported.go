package compose

import (
	"fmt"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/tree"
)

// supportedKeys is every compose key stack translates (or deliberately
// accepts as having no effect on a single host). Anything else the
// specification allows is an error naming the file, the service and the
// key: never silently ignored. The list is an allowlist, so a key added to
// the specification later is an error until it is wired in here.
//
// Accepted without effect, as docker compose does on one engine:
// networks.*.attachable, ports[].name, ports[].app_protocol, ports[].mode,
// volumes[].consistency, secrets/configs.*.name, labels of secrets/configs.
// Translated with a note: deploy.resources.reservations.cpus becomes a CPU
// weight (cpu_shares); a published port range for one container port gives
// replica n the n-th port.
//
// Rejected on purpose (each would need engine support first): build and
// pull_policy: build (stack runs images), develop, provider, pre_start /
// post_start / pre_stop hooks, links and external_links (names come from
// DNS), platform, runtime, isolation, gpus, deploy.placement / mode global /
// update_config / labels, blkio_config, cgroup*, cpu_period
// / cpu_quota / cpu_rt_*, mem_swappiness, oom_*, userns_mode, uts, umask,
// storage_opt, mac_address, credential_spec, device_cgroup_rules,
// use_api_socket, models, volumes[].image / subpath / bind.selinux, network
// driver_opts, IPv6, ipam aux_addresses and options, external secrets and
// configs, and the top-level jobs and models.
var supportedKeys = []string{
	"name", "version",
	"include", "include.[].path", "include.[].env_file", "include.[].project_directory",

	"networks", "networks.*", "networks.*.name", "networks.*.driver", "networks.*.external",
	"networks.*.external.name", "networks.*.internal", "networks.*.attachable",
	"networks.*.labels", "networks.*.labels.*", "networks.*.ipam", "networks.*.ipam.driver",
	"networks.*.ipam.config", "networks.*.ipam.config.[].subnet",
	"networks.*.ipam.config.[].gateway", "networks.*.ipam.config.[].ip_range",

	"volumes", "volumes.*", "volumes.*.name", "volumes.*.driver", "volumes.*.driver_opts",
	"volumes.*.driver_opts.*", "volumes.*.external", "volumes.*.external.name",
	"volumes.*.labels", "volumes.*.labels.*",

	"secrets", "secrets.*", "secrets.*.name", "secrets.*.file", "secrets.*.environment",
	"secrets.*.labels", "secrets.*.labels.*",
	"configs", "configs.*", "configs.*.name", "configs.*.file", "configs.*.environment",
	"configs.*.content", "configs.*.labels", "configs.*.labels.*",

	"services", "services.*",
}

// supportedServiceKeys are relative to services.<name>.
var supportedServiceKeys = []string{
	// process
	"image", "command", "entrypoint", "environment", "environment.*", "env_file", "attach",
	"env_file.[].path", "env_file.[].required", "env_file.[].format", "working_dir", "user",
	"group_add", "init", "stop_signal", "stop_grace_period", "tty", "stdin_open", "hostname",
	"domainname", "container_name", "labels", "labels.*", "label_file", "annotations",
	"annotations.*", "pull_policy", "profiles", "extends", "extends.file", "extends.service",
	// lifecycle
	"restart", "healthcheck", "healthcheck.test", "healthcheck.interval", "healthcheck.timeout",
	"healthcheck.retries", "healthcheck.start_period", "healthcheck.start_interval",
	"healthcheck.disable", "logging", "logging.driver", "logging.options", "logging.options.*",
	"depends_on", "depends_on.*", "depends_on.*.condition", "depends_on.*.required",
	"depends_on.*.restart", "scale",
	// mounts
	"volumes", "volumes.[].type", "volumes.[].source", "volumes.[].target",
	"volumes.[].read_only", "volumes.[].consistency", "volumes.[].bind",
	"volumes.[].bind.create_host_path", "volumes.[].bind.propagation", "volumes.[].volume",
	"volumes.[].volume.nocopy", "volumes.[].tmpfs", "volumes.[].tmpfs.size",
	"volumes.[].tmpfs.mode", "volumes_from", "tmpfs",
	// network
	"networks", "networks.*", "networks.*.aliases", "networks.*.ipv4_address",
	"networks.*.priority", "network_mode", "ports", "ports.[].name", "ports.[].mode",
	"ports.[].host_ip", "ports.[].target", "ports.[].published", "ports.[].protocol",
	"ports.[].app_protocol", "expose", "extra_hosts", "extra_hosts.*", "dns", "dns_search",
	"dns_opt",
	// resources
	"mem_limit", "mem_reservation", "memswap_limit", "cpus", "cpu_shares", "cpuset",
	"pids_limit", "shm_size", "ulimits", "ulimits.*", "ulimits.*.soft", "ulimits.*.hard",
	"devices", "devices.[].source", "devices.[].target", "devices.[].permissions",
	"deploy", "deploy.mode", "deploy.replicas", "deploy.resources", "deploy.resources.limits",
	"deploy.resources.limits.cpus", "deploy.resources.limits.memory",
	"deploy.resources.limits.pids", "deploy.resources.reservations",
	"deploy.resources.reservations.cpus", "deploy.resources.reservations.memory",
	"deploy.restart_policy", "deploy.restart_policy.condition", "deploy.restart_policy.delay",
	"deploy.restart_policy.max_attempts", "deploy.restart_policy.window",
	// security
	"cap_add", "cap_drop", "privileged", "read_only", "security_opt", "sysctls", "sysctls.*",
	"ipc", "pid",
	// files
	"secrets", "secrets.[].source", "secrets.[].target", "secrets.[].uid", "secrets.[].gid",
	"secrets.[].mode", "configs", "configs.[].source", "configs.[].target", "configs.[].uid",
	"configs.[].gid", "configs.[].mode",
}

var supportedPaths = sync.OnceValue(func() []tree.Path {
	var out []tree.Path
	for _, k := range supportedKeys {
		out = append(out, tree.Path(k))
	}
	for _, k := range supportedServiceKeys {
		out = append(out, tree.Path("services.*."+k))
	}
	return out
})

// unsupported collects the keys compose-go found outside supportedKeys.
type unsupported struct {
	found []loader.UnsupportedAttribute
}

func (u *unsupported) option() func(*loader.Options) {
	return loader.WithSupportedAttributes(supportedPaths(), func(found []loader.UnsupportedAttribute) {
		u.found = found
	})
}

// report adds one problem per unsupported key, for the given services only
// (services disabled by profiles or not selected are not run, so what they
// use does not matter) and for every top-level key.
func (u *unsupported) report(p *problems, services map[string]bool) {
	for _, f := range u.found {
		parts := f.Path.Parts()
		if len(parts) >= 3 && parts[0] == "services" {
			if services[parts[1]] {
				p.add(parts[1], keyOf(parts[2:]), errUnsupported)
			}
			continue
		}
		p.add("", keyOf(parts), errUnsupported)
	}
}

var errUnsupported = fmt.Errorf("not supported by stack yet (remove it, or move it under an x- extension key)")

// keyOf renders a path below a service, dropping list markers.
func keyOf(parts []string) string {
	var out []string
	for _, p := range parts {
		if p != tree.PathMatchList {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}
