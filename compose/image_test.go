package compose

import "testing"

func TestNormalizeImageLikeDocker(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                     "docker.io/library/busybox:latest",
		"busybox:1.36":                "docker.io/library/busybox:1.36",
		"library/busybox":             "docker.io/library/busybox:latest",
		"docker.io/busybox":           "docker.io/library/busybox:latest",
		"index.docker.io/user/app:v1": "docker.io/user/app:v1",
		"user/app":                    "docker.io/user/app:latest",
		"ghcr.io/org/app":             "ghcr.io/org/app:latest",
		"localhost/app":               "localhost/app:latest",
		"localhost:5000/app:dev":      "localhost:5000/app:dev",
		"registry:5000/a/b/c":         "registry:5000/a/b/c:latest",
		"busybox@sha256:abcd":         "docker.io/library/busybox@sha256:abcd",
		"quay.io/a/b:1.0@sha256:abcd": "quay.io/a/b:1.0@sha256:abcd",
	} {
		if got := NormalizeImage(in); got != want {
			t.Errorf("NormalizeImage(%q) = %q, want %q", in, got, want)
		}
	}
}
