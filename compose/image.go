package compose

import "strings"

// NormalizeImage writes an image reference the way docker resolves it:
// busybox → docker.io/library/busybox:latest, ghcr.io/a/b → ghcr.io/a/b:latest.
// A digest reference keeps its digest and gets no tag.
func NormalizeImage(ref string) string {
	if ref == "" {
		return ""
	}
	name, digest, hasDigest := strings.Cut(ref, "@")
	domain, rest := splitDomain(name)
	if domain == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	out := domain + "/" + rest
	if hasDigest {
		return out + "@" + digest
	}
	if !strings.Contains(rest[strings.LastIndex(rest, "/")+1:], ":") {
		out += ":latest"
	}
	return out
}

// splitDomain separates the registry from the repository path, as
// distribution/reference does: the first component is a registry when it
// has a dot or a port, or is localhost.
func splitDomain(name string) (string, string) {
	first, rest, ok := strings.Cut(name, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost" && strings.ToLower(first) == first) {
		return "docker.io", name
	}
	if first == "index.docker.io" {
		first = "docker.io"
	}
	return first, rest
}
