// Package kmsapi is the wire model of the kmsd HTTP API: every JSON request
// and response type, the enumerations and the error codes, defined once.
//
// The server (server/internal/httpapi and the transport-free core server/internal/kms), the Go
// client (starter/kmsclient) and the OpenAPI document (generated from the
// server's route table over these types) all use this package, so a field
// added here is added everywhere. It imports only the standard library:
// a client that imports it links no server code.
package kmsapi
