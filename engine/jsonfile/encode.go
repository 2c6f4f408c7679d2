package jsonfile

import (
	"encoding/binary"
	"time"
	"unicode/utf8"
)

// AppendLine encodes one Docker json-file line:
// {"log":"text\n","stream":"stdout","time":"2006-01-02T15:04:05.999999999Z"}
func AppendLine(dst []byte, stream string, text []byte, t time.Time) []byte {
	return appendLineStamp(dst, stream, text, t.UTC().AppendFormat(nil, time.RFC3339Nano))
}

func appendLineStamp(dst []byte, stream string, text, stamp []byte) []byte {
	dst = append(dst, `{"log":`...)
	dst = appendJSONString(dst, text)
	dst = append(dst, `,"stream":"`...)
	dst = append(dst, stream...)
	dst = append(dst, `","time":"`...)
	dst = append(dst, stamp...)
	return append(dst, "\"}\n"...)
}

// plainJSON marks the bytes a JSON string holds as they are.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		j := plainPrefix(s, i)
		dst = append(dst, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
	}
	return append(dst, '"')
}

// plainPrefix is the end of the run of plain bytes in s that starts at i.
// It looks at eight bytes at a time: log text is mostly plain ASCII, and the
// encoding is most of the logging binary's own work.
func plainPrefix(s []byte, i int) int {
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64(s[i:])
		if (below(w, 0x20)|zeroByte(w^'"'*ones)|zeroByte(w^'\\'*ones)|w)&highs != 0 {
			break
		}
	}
	for i < len(s) && plainJSON[s[i]] {
		i++
	}
	return i
}

// Bit tricks on eight bytes at once: a high bit set in the result means
// some byte of w is zero (zeroByte), or below n (below, for n ≤ 0x80).
const ones, highs = 0x0101010101010101, 0x8080808080808080

func zeroByte(w uint64) uint64 { return (w - ones) &^ w & highs }
func below(w, n uint64) uint64 { return (w - n*ones) &^ w & highs }
