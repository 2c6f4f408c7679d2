package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/compose-spec/compose-go/v2/types"
)

// HashVersion names the config-hash algorithm; containers record it in
// engine.LabelHashVersion. Change it only with the algorithm, and let the
// reconciler treat a container hashed by another version as up to date
// unless something else changed, so upgrading stack never recreates
// everything by itself.
const HashVersion = "1"

// hashInput is file content a container reads that the service definition
// only references: a secret, a config or an env file.
type hashInput struct {
	kind, name string
	content    []byte
}

// serviceHash is compose's ServiceHash — SHA-256 of the service's JSON
// without build, pull_policy, scale, deploy.replicas, depends_on and
// profiles — extended with the content of the files the service reads, so a
// changed secret recreates its containers. Without such files it equals
// compose's hash.
func serviceHash(s types.ServiceConfig, inputs []hashInput) (string, error) {
	o := s
	o.Build = nil
	o.PullPolicy = ""
	o.Scale = nil
	if o.Deploy != nil {
		d := *o.Deploy
		d.Replicas = nil
		o.Deploy = &d
	}
	o.DependsOn = nil
	o.Profiles = nil
	b, err := json.Marshal(o)
	if err != nil {
		return "", fmt.Errorf("hash service %s: %w", s.Name, err)
	}
	h := sha256.New()
	h.Write(b)
	for _, in := range inputs {
		sum := sha256.Sum256(in.content)
		fmt.Fprintf(h, "\x00%s %s %x", in.kind, in.name, sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// objectHash is compose's NetworkHash / VolumeHash: SHA-256 of the JSON.
func objectHash(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
