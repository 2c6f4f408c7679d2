package compose

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/stackdev/stack/engine"
)

// render prints a Desired as stable text for golden files: zero values are
// left out, maps are sorted, hashes are replaced by <hash> (their values are
// covered by hash_test.go) and dir by $DIR.
func render(d Desired, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "project: %s\nworking_dir: %s\nconfig_files: %s\n", d.Project, d.WorkingDir, strings.Join(d.ConfigFiles, ","))
	for _, s := range d.Services {
		b.WriteString("\nservice " + s.Name + "\n")
		renderValue(&b, "  ", reflect.ValueOf(s))
	}
	for _, c := range d.Containers {
		b.WriteString("\ncontainer " + c.Name + "\n")
		renderValue(&b, "  ", reflect.ValueOf(c))
	}
	for _, n := range d.Networks {
		b.WriteString("\nnetwork " + n.Name + "\n")
		renderValue(&b, "  ", reflect.ValueOf(n))
	}
	for _, v := range d.Volumes {
		b.WriteString("\nvolume " + v.Name + "\n")
		renderValue(&b, "  ", reflect.ValueOf(v))
	}
	return strings.ReplaceAll(b.String(), dir, "$DIR")
}

var durationType = reflect.TypeFor[time.Duration]()

func renderValue(b *strings.Builder, indent string, v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		if fv.IsZero() || f.Name == "Name" && indent == "  " {
			continue
		}
		renderField(b, indent, f.Name, fv)
	}
}

func renderField(b *strings.Builder, indent, name string, v reflect.Value) {
	switch {
	case name == "ConfigHash":
		fmt.Fprintf(b, "%s%s: <hash>\n", indent, name)
	case v.Type() == durationType:
		fmt.Fprintf(b, "%s%s: %s\n", indent, name, time.Duration(v.Int()))
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
		fmt.Fprintf(b, "%s%s: %q\n", indent, name, v.Bytes())
	case v.Kind() == reflect.Uint32 && name == "Mode" || name == "TmpfsMode":
		fmt.Fprintf(b, "%s%s: %#o\n", indent, name, v.Uint())
	case v.Kind() == reflect.Struct:
		fmt.Fprintf(b, "%s%s:\n", indent, name)
		renderValue(b, indent+"  ", v)
	case v.Kind() == reflect.Pointer:
		renderField(b, indent, name, v.Elem())
	case v.Kind() == reflect.Map:
		renderMap(b, indent, name, v)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		for i := 0; i < v.Len(); i++ {
			fmt.Fprintf(b, "%s%s[%d]:\n", indent, name, i)
			renderValue(b, indent+"  ", v.Index(i))
		}
	case v.Kind() == reflect.Slice:
		fmt.Fprintf(b, "%s%s: %q\n", indent, name, v.Interface())
	default:
		fmt.Fprintf(b, "%s%s: %v\n", indent, name, v.Interface())
	}
}

func renderMap(b *strings.Builder, indent, name string, v reflect.Value) {
	m := v.Interface().(map[string]string)
	fmt.Fprintf(b, "%s%s:\n", indent, name)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		val := m[k]
		if k == engine.LabelConfigHash {
			val = "<hash>"
		}
		fmt.Fprintf(b, "%s  %s=%s\n", indent, k, val)
	}
}
