package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestConfirmAsksOnATerminalAndRefusesWithoutOne(t *testing.T) {
	var out bytes.Buffer
	ok, err := confirm(strings.NewReader("y\n"), &out, true, "Going to remove demo-web-1")
	if !ok || err != nil {
		t.Errorf("answer y: ok=%v err=%v", ok, err)
	}
	if out.String() != "Going to remove demo-web-1. Are you sure? [yN] " {
		t.Errorf("prompt %q", out.String())
	}
	for _, answer := range []string{"\n", "n\n", "nope\n", ""} {
		if ok, err := confirm(strings.NewReader(answer), &out, true, "x"); ok || err != nil {
			t.Errorf("answer %q: ok=%v err=%v, want a plain no", answer, ok, err)
		}
	}
	ok, err = confirm(strings.NewReader("y\n"), &out, false, "Going to remove demo-web-1")
	if ok || err == nil || !strings.Contains(err.Error(), "-f") {
		t.Errorf("without a terminal: ok=%v err=%v, want a refusal naming -f", ok, err)
	}
}
