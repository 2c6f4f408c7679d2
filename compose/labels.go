package compose

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/stackdev/stack/engine"
)

// labelEnvironmentFile is compose's label listing the --env-file files.
const labelEnvironmentFile = "com.docker.compose.project.environment_file"

// labels are the service's labels plus compose's, as compose writes them.
func (b *serviceBuilder) labels(n int) map[string]string {
	l := copyMap(b.s.Labels)
	if l == nil {
		l = map[string]string{}
	}
	for k, v := range b.m.projectLabels() {
		l[k] = v
	}
	l[engine.LabelService] = b.s.Name
	l[engine.LabelNumber] = itoa(n)
	l[engine.LabelOneOff] = "False"
	l[engine.LabelConfigHash] = b.hash
	l[engine.LabelHashVersion] = HashVersion
	if deps := b.dependsOnLabel(); deps != "" {
		l[engine.LabelDependsOn] = deps
	}
	return l
}

// projectLabels are on every container: project, directory, files, version.
func (m *Model) projectLabels() map[string]string {
	l := map[string]string{
		engine.LabelProject:     m.project.Name,
		engine.LabelWorkingDir:  m.project.WorkingDir,
		engine.LabelConfigFiles: strings.Join(m.in.files, ","),
		engine.LabelVersion:     m.version(),
	}
	if len(m.in.envFiles) > 0 {
		l[labelEnvironmentFile] = strings.Join(m.in.envFiles, ",")
	}
	return l
}

func (m *Model) version() string {
	if m.opts.Version != "" {
		return m.opts.Version
	}
	return "dev"
}

// dependsOnLabel is compose's "svc:condition:restart,..." list.
func (b *serviceBuilder) dependsOnLabel() string {
	var parts []string
	for _, d := range b.dependencies() {
		parts = append(parts, fmt.Sprintf("%s:%s:%t", d.Service, d.Condition, d.Restart))
	}
	return strings.Join(parts, ",")
}

// dependencies are the depends_on edges to active services, by name.
func (b *serviceBuilder) dependencies() []engine.Dependency {
	var out []engine.Dependency
	for _, name := range sortedKeys(b.s.DependsOn) {
		if _, ok := b.m.project.Services[name]; !ok {
			continue
		}
		d := b.s.DependsOn[name]
		cond := d.Condition
		if cond == "" {
			cond = "service_started"
		}
		out = append(out, engine.Dependency{Service: name, Condition: cond, Restart: d.Restart, Required: d.Required})
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }
