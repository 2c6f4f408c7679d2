package jsonfile

import (
	"fmt"
	"strconv"
	"strings"
)

// Config is what the logging binary needs: where to write and when to
// rotate.
type Config struct {
	Path     string // <state>/containers/<id>/<id>-json.log
	MaxSize  int64  // bytes per file; 0 means never rotate
	MaxFiles int    // files kept, the current one included
}

// Encode is the logging binary's only argument, a URL query
// (path=…&max-size=…&max-file=…).
func (cfg Config) Encode() string {
	return "path=" + queryEscape(cfg.Path) +
		"&max-size=" + strconv.FormatInt(cfg.MaxSize, 10) +
		"&max-file=" + strconv.Itoa(cfg.MaxFiles)
}

// DecodeConfig is Encode's inverse. It reads the query itself: net/url
// would bring in packages that Go initialises late (see the package doc).
func DecodeConfig(arg string) (Config, error) {
	v := map[string]string{}
	for pair := range strings.SplitSeq(arg, "&") {
		key, value, _ := strings.Cut(pair, "=")
		k, err := queryUnescape(key)
		if err != nil {
			return Config{}, fmt.Errorf("log driver argument: %w", err)
		}
		if v[k], err = queryUnescape(value); err != nil {
			return Config{}, fmt.Errorf("log driver argument: %s: %w", k, err)
		}
	}
	cfg := Config{Path: v["path"]}
	if !strings.HasPrefix(cfg.Path, "/") {
		return Config{}, fmt.Errorf("log driver argument: path %q is not absolute", cfg.Path)
	}
	var err error
	if cfg.MaxSize, err = strconv.ParseInt(v["max-size"], 10, 64); err != nil {
		return Config{}, fmt.Errorf("log driver argument: max-size: %w", err)
	}
	if cfg.MaxFiles, err = strconv.Atoi(v["max-file"]); err != nil || cfg.MaxFiles < 1 {
		return Config{}, fmt.Errorf("log driver argument: max-file %q", v["max-file"])
	}
	return cfg, nil
}

// queryEscape escapes all but RFC 3986's unreserved bytes and '/'.
func queryEscape(s string) string {
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteString(strings.ToUpper(strconv.FormatUint(uint64(c)>>4, 16)))
		b.WriteString(strings.ToUpper(strconv.FormatUint(uint64(c)&0xf, 16)))
	}
	return b.String()
}

// queryUnescape reads %XX and '+' (a space) as url.QueryUnescape does.
func queryUnescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '+':
			b.WriteByte(' ')
		case '%':
			if i+2 >= len(s) {
				return "", fmt.Errorf("bad escape %q", s[i:])
			}
			c, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("bad escape %q", s[i:i+3])
			}
			b.WriteByte(byte(c))
			i += 2
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// RotatedPath is the n-th older file: path.1 is the newest rotated one.
func RotatedPath(path string, n int) string {
	if n == 0 {
		return path
	}
	return path + "." + strconv.Itoa(n)
}
