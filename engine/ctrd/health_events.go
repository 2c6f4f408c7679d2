package ctrd

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// probeExecPrefix starts the exec IDs of healthcheck probes, so that the
// event subscription can leave their exits out.
const probeExecPrefix = "health-"

func probeExecID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return probeExecPrefix + hex.EncodeToString(b)
}

// eventFilters are the filters of the event subscription of namespace
// filter ns: every task and container event but those of execs (added,
// started), and the exits of healthcheck probes. The daemon probes dozens
// of containers a second, and each event it would only decode and drop
// costs a wake-up of the stream's goroutines.
func eventFilters(ns string) []string {
	return []string{
		ns + `,topic~="^/tasks/",topic!="/tasks/exec-added",topic!="/tasks/exec-started",topic!="/tasks/exit"`,
		ns + `,topic=="/tasks/exit",event.id~="` + notPrefixPattern(probeExecPrefix) + `"`,
		ns + `,topic~="^/containers/"`,
	}
}

// notPrefixPattern is a regular expression (RE2: no look-ahead) matching
// the strings that do not start with prefix, a string of letters, digits
// and dashes.
func notPrefixPattern(prefix string) string {
	var b strings.Builder
	b.WriteString("^(?:")
	for i := range len(prefix) {
		if i > 0 {
			b.WriteByte('|')
		}
		b.WriteString(prefix[:i] + "(?:$|[^" + prefix[i:i+1] + "])")
	}
	b.WriteString(")")
	return b.String()
}
