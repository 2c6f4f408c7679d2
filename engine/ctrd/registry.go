package ctrd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// Environment variables read by RegistryConfigFromEnv.
const (
	EnvInsecureRegistries = "STACK_INSECURE_REGISTRIES" // comma-separated host[:port] list
	EnvRegistryTimeout    = "STACK_REGISTRY_TIMEOUT"    // Go duration, e.g. 30s
)

// DefaultRegistryTimeout bounds connecting to a registry and waiting for the
// headers of each of its answers (not the transfer of a body).
const DefaultRegistryTimeout = 30 * time.Second

// RegistryConfig says how to reach registries.
type RegistryConfig struct {
	// Insecure hosts (host or host:port) are spoken to over plain HTTP.
	// Loopback registries (localhost, 127.0.0.1, ::1) always are.
	Insecure []string
	// Timeout bounds dialing and each wait for response headers.
	Timeout time.Duration
	// DockerConfigDir holds config.json with credentials; empty means
	// $DOCKER_CONFIG, else ~/.docker.
	DockerConfigDir string
}

// RegistryConfigFromEnv reads STACK_INSECURE_REGISTRIES and
// STACK_REGISTRY_TIMEOUT. An unparsable timeout is an error, not a silent
// default.
func RegistryConfigFromEnv() (RegistryConfig, error) {
	cfg := RegistryConfig{Timeout: DefaultRegistryTimeout}
	for _, h := range strings.Split(os.Getenv(EnvInsecureRegistries), ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.Insecure = append(cfg.Insecure, h)
		}
	}
	if v := os.Getenv(EnvRegistryTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return cfg, fmt.Errorf("%s=%q is not a positive duration (e.g. 30s)", EnvRegistryTimeout, v)
		}
		cfg.Timeout = d
	}
	return cfg, nil
}

// isInsecure reports whether host is spoken to over plain HTTP.
func (cfg RegistryConfig) isInsecure(host string) (bool, error) {
	for _, h := range cfg.Insecure {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h, "http://"), "https://"), "/")
		if h == host {
			return true, nil
		}
		if hostOnly, _, err := net.SplitHostPort(host); err == nil && hostOnly == h {
			return true, nil
		}
	}
	return docker.MatchLocalhost(host)
}

// newResolver builds a resolver for one pull or push. Never reuse one across
// pushes: its upload tracker is keyed by digest, so a second push of the same
// content to another repository silently sends nothing.
func (cfg RegistryConfig) newResolver(tracker docker.StatusTracker) (remotes.Resolver, error) {
	creds, err := loadDockerCredentials(cfg.DockerConfigDir)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: cfg.transport()}
	hosts := docker.ConfigureDefaultRegistries(
		docker.WithClient(client),
		docker.WithPlainHTTP(cfg.isInsecure),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(
			docker.WithAuthClient(client),
			docker.WithAuthCreds(creds.lookup),
		)),
	)
	return docker.NewResolver(docker.ResolverOptions{Hosts: hosts, Tracker: tracker}), nil
}

func (cfg RegistryConfig) transport() *http.Transport {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultRegistryTimeout
	}
	t := docker.DefaultHTTPTransport(nil)
	t.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = timeout
	t.ResponseHeaderTimeout = timeout
	return t
}

// NormalizeRef turns a reference as users type it into containerd's full
// form, as docker does: busybox → docker.io/library/busybox:latest.
func NormalizeRef(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return named.String(), nil
}

// FamiliarRef is the short form docker prints: docker.io/library/busybox:latest → busybox:latest.
func FamiliarRef(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(named)
}

// registryHost is the registry part of a normalized reference.
func registryHost(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.Domain(named)
}

// registryError says which registry failed for which reference and, where
// it can, what the user can do about it.
func registryError(op, ref string, err error) error {
	host := registryHost(ref)
	var hint string
	var netErr net.Error
	switch {
	case errdefs.IsUnauthorized(err), errdefs.IsPermissionDenied(err), strings.Contains(err.Error(), "401 Unauthorized"), strings.Contains(err.Error(), "authorization failed"):
		hint = " (the registry refused the credentials: log in with docker login or add them to ~/.docker/config.json)"
	case errdefs.IsNotFound(err):
		hint = " (no such image or tag in that registry)"
	case errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, context.DeadlineExceeded):
		hint = fmt.Sprintf(" (the registry did not answer in time; raise %s)", EnvRegistryTimeout)
	case strings.Contains(err.Error(), ": 50"):
		hint = " (the registry failed on its side; check its logs, or try again)"
	case strings.Contains(err.Error(), "connection refused"):
		hint = " (nothing listens there: is the registry running?)"
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		hint = fmt.Sprintf(" (a plain-HTTP registry: add it with --insecure-registry or %s)", EnvInsecureRegistries)
	}
	return fmt.Errorf("%s %s: registry %s: %w%s", op, ref, host, err, hint)
}
