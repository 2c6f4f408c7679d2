package compose

import (
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileChecked compiles a schema with the metaschema check that loads
// skip (schema.go).
func compileChecked(t *testing.T, name, doc string) error {
	t.Helper()
	jsonschema.ValidateSchemas = true
	defer func() { jsonschema.ValidateSchemas = false }()
	parsed, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(name, parsed); err != nil {
		return err
	}
	_, err = c.Compile(name)
	return err
}

func TestTheEmbeddedComposeSchemaIsAValidSchema(t *testing.T) {
	if err := compileChecked(t, "compose-spec.json", schema.Schema); err != nil {
		t.Fatalf("compose-go's compose-spec.json fails its metaschema: %v", err)
	}
	// The check is on in compileChecked: a broken schema fails it.
	if err := compileChecked(t, "broken.json", `{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": 5}`); err == nil {
		t.Fatal("a schema whose type is a number compiled: the metaschema check did not run")
	}
}
