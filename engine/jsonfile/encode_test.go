package jsonfile

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// decodedAsJSON is what a JSON reader makes of our encoding of s.
func decodedAsJSON(t testing.TB, s []byte) string {
	t.Helper()
	var got string
	if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil {
		t.Fatalf("%q encodes as %s: %v", s, appendJSONString(nil, s), err)
	}
	return got
}

// wantDecoded is what encoding/json's own encoding of s decodes to (each
// invalid UTF-8 byte becomes U+FFFD, as in ours).
func wantDecoded(t testing.TB, s []byte) string {
	t.Helper()
	enc, err := json.Marshal(string(s))
	if err != nil {
		t.Fatal(err)
	}
	var want string
	if err := json.Unmarshal(enc, &want); err != nil {
		t.Fatal(err)
	}
	return want
}

// The eight-bytes-at-a-time scan must see a byte that needs escaping at any
// position of a word, for every byte value.
func TestEveryByteAtEveryPositionOfAWordIsEncodedAsJSONReadsIt(t *testing.T) {
	for c := range 256 {
		for pos := range 17 {
			s := []byte("abcdefghijklmnopq")
			s[pos] = byte(c)
			if got, want := decodedAsJSON(t, s), wantDecoded(t, s); got != want {
				t.Fatalf("byte %#x at %d: decoded %q, want %q", c, pos, got, want)
			}
		}
	}
}

func TestRandomTextIsEncodedAsJSONReadsIt(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("aZ09 \t\n\r\"\\/\x00\x1f\x7f\x80\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff")
	for range 20000 {
		s := make([]byte, r.IntN(40))
		for i := range s {
			s[i] = alphabet[r.IntN(len(alphabet))]
		}
		if got, want := decodedAsJSON(t, s), wantDecoded(t, s); got != want {
			t.Fatalf("%q: decoded %q, want %q", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add([]byte("plain ascii text of a typical log line\n"))
	f.Add([]byte("\"quoted\" \\ back\x01slash \xff\xfe é €"))
	f.Fuzz(func(t *testing.T, s []byte) {
		if got, want := decodedAsJSON(t, s), wantDecoded(t, s); got != want {
			t.Fatalf("%q: decoded %q, want %q", s, got, want)
		}
	})
}

func BenchmarkAppendJSONString(b *testing.B) {
	line := []byte("GET /api/items/000042 200 0.004s a typical access log line of a web service\n")
	b.SetBytes(int64(len(line)))
	var dst []byte
	for b.Loop() {
		dst = appendJSONString(dst[:0], line)
	}
}
