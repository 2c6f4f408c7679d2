package compose

import "github.com/santhosh-tekuri/jsonschema/v6"

// compose-go compiles its embedded compose-spec.json at the first load of
// each process, and the check of that schema against its draft's
// metaschema was a third of the compile: a few milliseconds of every `up`
// after an edit. The schema is fixed in the binary, and a test checks it
// (TestTheEmbeddedComposeSchemaIsAValidSchema); see
// third_party/jsonschema/README.md.
func init() { jsonschema.ValidateSchemas = false }
