package ctrd

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/stackdev/stack/engine"
)

// LogDriverCommand is the hidden subcommand the shim runs as the task's
// logging binary. It is the only key of the binary:// URI's query, so the
// 1.6 shim, which turns the query into argv as "key value" pairs, always
// calls `stack __log-driver <encoded LogConfig>`.
const LogDriverCommand = "__log-driver"

// LogBinaryEnv names the logging binary when the process starting tasks is
// not the stack binary itself (a test binary driving the engine in-process).
const LogBinaryEnv = "STACK_LOG_DRIVER_BINARY"

// LogConfig is what the logging binary needs: where to write and when to
// rotate.
type LogConfig struct {
	Path     string // <state>/containers/<id>/<id>-json.log
	MaxSize  int64  // bytes per file; 0 means never rotate
	MaxFiles int    // files kept, the current one included
}

// ParseLogConfig is where the container's log goes and its json-file
// rotation options (see engine.Logging.Limits).
func ParseLogConfig(path string, l engine.Logging) (LogConfig, error) {
	lim, err := l.Limits()
	if err != nil {
		return LogConfig{}, err
	}
	return LogConfig{Path: path, MaxSize: lim.MaxSize, MaxFiles: lim.MaxFiles}, nil
}

// encode is the logging binary's only argument.
func (cfg LogConfig) encode() string {
	v := url.Values{}
	v.Set("path", cfg.Path)
	v.Set("max-size", strconv.FormatInt(cfg.MaxSize, 10))
	v.Set("max-file", strconv.Itoa(cfg.MaxFiles))
	return v.Encode()
}

// decodeLogConfig is encode's inverse.
func decodeLogConfig(arg string) (LogConfig, error) {
	v, err := url.ParseQuery(arg)
	if err != nil {
		return LogConfig{}, fmt.Errorf("log driver argument: %w", err)
	}
	cfg := LogConfig{Path: v.Get("path")}
	if !filepath.IsAbs(cfg.Path) {
		return LogConfig{}, fmt.Errorf("log driver argument: path %q is not absolute", cfg.Path)
	}
	if cfg.MaxSize, err = strconv.ParseInt(v.Get("max-size"), 10, 64); err != nil {
		return LogConfig{}, fmt.Errorf("log driver argument: max-size: %w", err)
	}
	if cfg.MaxFiles, err = strconv.Atoi(v.Get("max-file")); err != nil || cfg.MaxFiles < 1 {
		return LogConfig{}, fmt.Errorf("log driver argument: max-file %q", v.Get("max-file"))
	}
	return cfg, nil
}

// logBinary is the absolute path the shim runs as the logging binary: the
// running stack executable, unless STACK_LOG_DRIVER_BINARY names another.
func logBinary() (string, error) {
	if p := os.Getenv(LogBinaryEnv); p != "" {
		return filepath.Abs(p)
	}
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the stack binary for the logging driver (set %s): %w", LogBinaryEnv, err)
	}
	// A test binary run as the logging driver would run its tests again from
	// every container, and those start containers of their own.
	if strings.HasSuffix(p, ".test") {
		return "", fmt.Errorf("%s is a test binary and cannot be the logging driver: set %s to a built stack binary", p, LogBinaryEnv)
	}
	return p, nil
}

// rotatedPath is the n-th older file: path.1 is the newest rotated one.
func rotatedPath(path string, n int) string {
	if n == 0 {
		return path
	}
	return path + "." + strconv.Itoa(n)
}
