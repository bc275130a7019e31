package hub

import _ "embed"

//go:embed openapi.json
var openAPI []byte

// OpenAPI is the OpenAPI 3.1 document of what this package serves. The
// caller gets a copy, so the embedded document cannot be changed.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }
