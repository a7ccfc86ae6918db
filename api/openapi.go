package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of every /api/v1 route
// (openapi.yaml): their parameters, bodies, answers and errors, and the
// permission each needs. It is here for the server to serve and clients
// to generate from; TestOpenAPIDescribesEveryRoute holds it to Routes.
//
//go:embed openapi.yaml
var OpenAPI []byte
