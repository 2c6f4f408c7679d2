package ctrd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/jsonfile"
)

// LogBinaryEnv names the logging binary when the process starting tasks is
// not the stack binary itself (a test binary driving the engine in-process).
const LogBinaryEnv = "STACK_LOG_DRIVER_BINARY"

// ParseLogConfig is where the container's log goes and its json-file
// rotation options (see engine.Logging.Limits).
func ParseLogConfig(path string, l engine.Logging) (jsonfile.Config, error) {
	lim, err := l.Limits()
	if err != nil {
		return jsonfile.Config{}, err
	}
	return jsonfile.Config{Path: path, MaxSize: lim.MaxSize, MaxFiles: lim.MaxFiles}, nil
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
