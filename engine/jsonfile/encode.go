package jsonfile

import (
	"bytes"
	"encoding/binary"
	"math/bits"
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
		dst, i = appendEscaped(dst, s, i)
	}
	return append(dst, '"')
}

// appendEscaped appends s[i], a byte a JSON string cannot hold as it is (a
// quote, a backslash, a control byte), escaped, or the non-ASCII rune that
// starts there, and returns the index after it. Invalid UTF-8 becomes
// U+FFFD, as does a rune cut by the end of s.
func appendEscaped(dst, s []byte, i int) ([]byte, int) {
	c := s[i]
	if c >= utf8.RuneSelf {
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			return append(dst, `\ufffd`...), i + 1
		}
		return append(dst, s[i:i+size]...), i + size
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
	return dst, i + 1
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

// appendLines encodes the entries of p, a run of lines as Split leaves
// them (each ended by a newline, or cut after MaxLine bytes without one; the
// last may be shorter and unterminated), as appendLineStamp encodes each of
// them in turn. It goes through p once with the word-at-a-time scan and
// copies each plain run whole: the entries are found by the scan, not
// looked for beforehand, and only the bytes that need escaping stop it.
// glue is entryGlue of the stream and time.
func appendLines(dst, p, glue []byte) []byte {
	if len(p) == 0 {
		return dst
	}
	// Room for plain text of long lines; append grows dst if needed.
	dst = growTo(dst, len(dst)+len(p)+len(p)/2+len(glue))
	dst = append(dst, entryOpen...)
	// '"' and '\\' are found with IndexByte (vector instructions), which
	// leaves the scan only the range check; but in an entry where they
	// come every few bytes (JSON logged as text), the scan looks for them
	// too (dense), as calls of IndexByte would cost more than they save.
	quote, backslash := nextByte(p, 0, '"'), nextByte(p, 0, '\\')
	dense := false
	start := 0 // of the current entry
	for i := 0; ; {
		end := min(len(p), start+MaxLine) // of the current entry, at most
		if dense {
			dst, i = appendDense(dst, p[:end], i)
		} else {
			n := i + plainRun(p[i:min(end, quote, backslash)])
			dst = append(dst, p[i:n]...)
			i = n
		}
		if i == end {
			if i == len(p) {
				break
			}
			dst = append(dst, glue[2:]...) // MaxLine bytes: a partial entry
			start, dense = i, false
			quote, backslash = nextAfter(p, i, quote, '"'), nextAfter(p, i, backslash, '\\')
			continue
		}
		if c := p[i]; c == '\n' {
			dst = append(dst, glue...)
			i++
			start, dense = i, false
			quote, backslash = nextAfter(p, i, quote, '"'), nextAfter(p, i, backslash, '\\')
		} else {
			dst, i = appendEscaped(dst, p[:end], i)
			if (c == '"' || c == '\\') && !dense {
				next := nextByte(p, i, c)
				if c == '"' {
					quote = next
				} else {
					backslash = next
				}
				dense = next-i < denseGap
			}
		}
	}
	if start == len(p) { // ended by a newline: no next entry
		return dst[:len(dst)-len(entryOpen)]
	}
	return append(dst, glue[2:len(glue)-len(entryOpen)]...)
}

// entryOpen opens an entry, up to its text.
const entryOpen = `{"log":"`

// entryGlue is what appendLines writes at a newline: the escaped newline,
// the rest of the entry, and the next entry's opening. Without its first two
// bytes it ends an entry cut without a newline.
func entryGlue(dst []byte, stream string, stamp []byte) []byte {
	dst = append(dst, `\n","stream":"`...)
	dst = append(dst, stream...)
	dst = append(dst, `","time":"`...)
	dst = append(dst, stamp...)
	dst = append(dst, "\"}\n"...)
	return append(dst, entryOpen...)
}

// growTo is dst with room for at least n bytes.
func growTo(dst []byte, n int) []byte {
	if n <= cap(dst) {
		return dst
	}
	return append(dst[:cap(dst)], make([]byte, n-cap(dst))...)[:len(dst)]
}

// appendDense appends the bytes of s from i on that are plain or escaped
// with a backslash ('"', '\\') a byte at a time: between quotes a few bytes
// apart, that costs less than scanning words. It stops at any other byte.
func appendDense(dst, s []byte, i int) ([]byte, int) {
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case plainJSON[c]:
			dst = append(dst, c)
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		default:
			return dst, i
		}
	}
	return dst, i
}

// denseGap is the distance between quotes (or backslashes) below which
// appendLines looks for them with the scan rather than IndexByte.
const denseGap = 32

// nextAfter is next, the index of a c in p, if it is at i or after, else
// the index of the next c from i on. Each part of p is searched once.
func nextAfter(p []byte, i, next int, c byte) int {
	if next >= i {
		return next
	}
	return nextByte(p, i, c)
}

// nextByte is the index of the first c in p from i on, or len(p).
func nextByte(p []byte, i int, c byte) int {
	if j := bytes.IndexByte(p[i:], c); j >= 0 {
		return i + j
	}
	return len(p)
}

// plainRun is the length of the run of bytes from 0x20 to 0x7f at the start
// of s. It checks 32 bytes at a time while they all are, then finds the
// first that is not eight at a time.
func plainRun(s []byte) int {
	n := len(s)
	for len(s) >= 32 {
		b := (*[32]byte)(s)
		w0 := binary.LittleEndian.Uint64(b[0:])
		w1 := binary.LittleEndian.Uint64(b[8:])
		w2 := binary.LittleEndian.Uint64(b[16:])
		w3 := binary.LittleEndian.Uint64(b[24:])
		// A high bit is set in w - 0x20… at the first byte below 0x20 (it
		// may be at later bytes too, which does not matter here).
		if (w0|(w0-0x20*ones)|w1|(w1-0x20*ones)|w2|(w2-0x20*ones)|w3|(w3-0x20*ones))&highs != 0 {
			break
		}
		s = s[32:]
	}
	for len(s) >= 8 {
		w := binary.LittleEndian.Uint64(s)
		if m := (below(w, 0x20) | w) & highs; m != 0 {
			return n - len(s) + bits.TrailingZeros64(m)>>3
		}
		s = s[8:]
	}
	for len(s) > 0 && 0x20 <= s[0] && s[0] < utf8.RuneSelf {
		s = s[1:]
	}
	return n - len(s)
}
