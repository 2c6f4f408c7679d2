package jsonfile

import (
	"net/url"
	"strings"
	"testing"
)

func TestConfigSurvivesTheShimsURIAndDecodesAsNetURLWould(t *testing.T) {
	for _, path := range []string{
		"/var/lib/stack/containers/abc/abc-json.log",
		"/tmp/a b/c&d=e+f%20g/ü€/x-json.log",
	} {
		cfg := Config{Path: path, MaxSize: 10 << 20, MaxFiles: 3}
		// The shim turns binary://bin?__log-driver=ARG into argv ARG.
		uri := url.URL{Scheme: "binary", Path: "/bin/stack", RawQuery: url.Values{DriverCommand: {cfg.Encode()}}.Encode()}
		parsed, err := url.Parse(uri.String())
		if err != nil {
			t.Fatal(err)
		}
		arg := parsed.Query().Get(DriverCommand)
		got, err := DecodeConfig(arg)
		if err != nil || got != cfg {
			t.Errorf("%q: decoded %+v, %v", path, got, err)
		}
		std, err := url.ParseQuery(arg)
		if err != nil || std.Get("path") != path {
			t.Errorf("%q: net/url reads path %q, %v", path, std.Get("path"), err)
		}
	}
}

func TestBadConfigsAreRefusedWithTheKeyNamed(t *testing.T) {
	for arg, want := range map[string]string{
		"path=rel&max-size=1&max-file=1":   "not absolute",
		"path=/x&max-size=ten&max-file=1":  "max-size",
		"path=/x&max-size=1&max-file=0":    "max-file",
		"path=/x%zz&max-size=1&max-file=1": "path: bad escape",
		"path=/x&max-size=1&max-file=1%":   "max-file: bad escape",
	} {
		if _, err := DecodeConfig(arg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", arg, err, want)
		}
	}
}
