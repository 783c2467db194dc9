// Package kmstest starts a real, in-process kmsd for tests: an httptest
// server in front of the full handler (middleware, SigV4 authentication,
// policies, audit), SQLite and the development HSM backend in a temporary
// directory, and an admin access key.
//
//	srv := kmstest.Start(t)
//	client, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL,
//		AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
//
// Everything is torn down by t.Cleanup.
package kmstest
