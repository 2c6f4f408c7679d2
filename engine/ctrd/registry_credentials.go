package ctrd

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// dockerConfigFile is the part of ~/.docker/config.json that stack reads.
type dockerConfigFile struct {
	Auths map[string]dockerAuth `json:"auths"`
}

type dockerAuth struct {
	Auth          string `json:"auth"` // base64 "user:password"
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

// credentials maps a registry host to its login.
type credentials map[string]dockerAuth

// dockerConfigDir is where docker keeps config.json: $DOCKER_CONFIG, else
// ~/.docker.
func dockerConfigDir(dir string) string {
	if dir != "" {
		return dir
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".docker")
}

// loadDockerCredentials reads config.json. A missing file means no
// credentials; a malformed one is an error naming the file.
func loadDockerCredentials(dir string) (credentials, error) {
	dir = dockerConfigDir(dir)
	if dir == "" {
		return credentials{}, nil
	}
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return credentials{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read registry credentials: %w", err)
	}
	var cfg dockerConfigFile
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("read registry credentials from %s: %w (fix or remove the file)", path, err)
	}
	creds := credentials{}
	for key, a := range cfg.Auths {
		creds[credentialHost(key)] = a
	}
	return creds, nil
}

// credentialHost turns a config.json key ("https://index.docker.io/v1/",
// "registry.example:5000", "http://host/") into the host containerd asks for.
func credentialHost(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	if i := strings.IndexByte(key, '/'); i >= 0 {
		key = key[:i]
	}
	switch key {
	case "index.docker.io", "docker.io":
		return "registry-1.docker.io"
	}
	return key
}

// lookup is containerd's credentials callback: host → user, secret. An
// empty user with a secret means an identity (refresh) token.
func (c credentials) lookup(host string) (string, string, error) {
	a, ok := c[host]
	if !ok {
		return "", "", nil
	}
	if a.IdentityToken != "" {
		return "", a.IdentityToken, nil
	}
	if a.Auth == "" {
		return a.Username, a.Password, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.Auth))
	if err != nil {
		return "", "", fmt.Errorf("credentials for %s in docker config.json: auth is not base64: %w", host, err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", fmt.Errorf("credentials for %s in docker config.json: auth is not user:password", host)
	}
	return user, pass, nil
}
