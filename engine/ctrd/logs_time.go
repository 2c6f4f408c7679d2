package ctrd

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// logTimeLayouts are the absolute forms --since and --until accept, as
// Docker's timetypes: RFC 3339 with or without seconds, fraction or zone
// (no zone means local time), or a date.
var logTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
}

var unixTime = regexp.MustCompile(`^\d+(\.\d{1,9})?$`)

// ParseLogTime reads a --since or --until value: an RFC 3339 time, a Unix
// timestamp (seconds, optional fraction), or a duration before now like 42m
// or 1h30m.
func ParseLogTime(value string, now time.Time) (time.Time, error) {
	v := strings.TrimSpace(value)
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if unixTime.MatchString(v) {
		return parseUnix(v), nil
	}
	for _, layout := range logTimeLayouts {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2006-01-02T15:04:05Z), a Unix timestamp, or a duration before now like 42m", value)
}

func parseUnix(v string) time.Time {
	secs, frac, _ := strings.Cut(v, ".")
	s, _ := strconv.ParseInt(secs, 10, 64)
	ns := int64(0)
	if frac != "" {
		ns, _ = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	}
	return time.Unix(s, ns)
}
