package ctrd

import (
	"strings"
	"testing"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/jsonfile"
)

func TestParseLogConfig(t *testing.T) {
	for _, tc := range []struct {
		opts    map[string]string
		size    int64
		files   int
		wantErr string
	}{
		{nil, 10 << 20, 3, ""},
		{map[string]string{"max-size": "500k", "max-file": "5"}, 500 << 10, 5, ""},
		{map[string]string{"max-size": "1g"}, 1 << 30, 3, ""},
		{map[string]string{"max-size": "1.5MB"}, 3 << 19, 3, ""},
		{map[string]string{"max-size": "2048"}, 2048, 3, ""},
		{map[string]string{"max-size": "-1"}, 0, 3, ""},
		{map[string]string{"max-size": "ten"}, 0, 0, `logging.options.max-size "ten": not a size`},
		{map[string]string{"max-size": "10q"}, 0, 0, `unknown unit "q"`},
		{map[string]string{"max-file": "0"}, 0, 0, `logging.options.max-file "0"`},
		{map[string]string{"compress": "true"}, 0, 0, `logging.options.compress "true": not supported`},
	} {
		cfg, err := ParseLogConfig("/x", engine.Logging{Driver: "json-file", Options: tc.opts})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: error %v, want %q", tc.opts, err, tc.wantErr)
			}
			continue
		}
		if err != nil || cfg.MaxSize != tc.size || cfg.MaxFiles != tc.files {
			t.Errorf("%v: %+v, %v; want size %d files %d", tc.opts, cfg, err, tc.size, tc.files)
		}
		back, err := jsonfile.DecodeConfig(cfg.Encode())
		if err != nil || back != cfg {
			t.Errorf("%v: decode(encode) = %+v, %v", tc.opts, back, err)
		}
	}
}
