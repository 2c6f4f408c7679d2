package ctrd

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// LogDriverCommand is the hidden subcommand the shim runs as the task's
// logging binary. It is the only key of the binary:// URI's query, so the
// 1.6 shim, which turns the query into argv as "key value" pairs, always
// calls `stack __log-driver <encoded LogConfig>`.
const LogDriverCommand = "__log-driver"

// Docker's json-file defaults would grow without bound; these never fill a
// disk: three files of 10 MiB.
const (
	defaultLogMaxSize  = 10 << 20
	defaultLogMaxFiles = 3
)

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

// ParseLogConfig reads the json-file options max-size and max-file as Docker
// does (sizes like 500k, 10m, 1g; max-size -1 means unlimited). Other
// options are an error naming them.
func ParseLogConfig(path string, opts map[string]string) (LogConfig, error) {
	cfg := LogConfig{Path: path, MaxSize: defaultLogMaxSize, MaxFiles: defaultLogMaxFiles}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := cfg.set(k, opts[k]); err != nil {
			return LogConfig{}, fmt.Errorf("logging.options.%s %q: %w", k, opts[k], err)
		}
	}
	return cfg, nil
}

func (cfg *LogConfig) set(key, value string) error {
	switch key {
	case "max-size":
		if strings.TrimSpace(value) == "-1" {
			cfg.MaxSize = 0
			return nil
		}
		n, err := parseSize(value)
		if err != nil {
			return err
		}
		if n <= 0 {
			return fmt.Errorf("must be positive (or -1 for unlimited)")
		}
		cfg.MaxSize = n
	case "max-file":
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || n < 1 {
			return fmt.Errorf("must be a whole number of files, at least 1")
		}
		cfg.MaxFiles = n
	default:
		return fmt.Errorf("not supported by the json-file driver (use max-size and max-file)")
	}
	return nil
}

// parseSize reads a size as Docker's units.RAMInBytes does: a decimal
// number with an optional binary unit k, m, g, t (b, kb, kib... accepted).
func parseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("not a size: use a number with k, m or g, like 10m")
	}
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "b"), "i")
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q: use k, m or g, like 10m", unit)
	}
	return int64(f * mult), nil
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
	return p, nil
}

// rotatedPath is the n-th older file: path.1 is the newest rotated one.
func rotatedPath(path string, n int) string {
	if n == 0 {
		return path
	}
	return path + "." + strconv.Itoa(n)
}
