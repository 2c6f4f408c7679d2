package compose

import "testing"

func TestAttachFalseLoadsAsNoAttach(t *testing.T) {
	d := loadDir(t, t.TempDir(), map[string]string{"compose.yaml": `
services:
  web: {image: busybox}
  noisy: {image: busybox, attach: false}
  said: {image: busybox, attach: true}
`}, LoadOptions{})
	want := map[string]bool{"web": false, "noisy": true, "said": false}
	for name, noAttach := range want {
		svc, ok := d.Service(name)
		if !ok || svc.NoAttach != noAttach {
			t.Errorf("%s: NoAttach %v (found %v), want %v", name, svc.NoAttach, ok, noAttach)
		}
	}
}
