// Command kmsload is a loopback load generator for kmsd, the kmsgo key
// management server. It measures the server from a second process, the way
// the project's benchmark requirement asks: Encrypt, Decrypt and
// GenerateDataKey of 32 bytes with SOFTWARE and HSM keys at several
// concurrencies, next to two baselines measured in the same run with the
// same keep-alive transport:
//
//   - healthz: GET /healthz, unsigned, no crypto: the ceiling of the HTTP
//     stack (gin, routing, loopback round trip);
//   - describe-key: GET /v1/keys/:id, SigV4-signed, no crypto: the ceiling
//     once authentication and audit are paid, so that the ratio of a crypto
//     operation to each baseline shows where the time goes.
//
// For every (operation, protection level, concurrency) cell it runs a
// warm-up, then closed-loop workers for --duration (or until --max-requests)
// and reports requests, errors, successful operations per second, the
// p50/p90/p99/max latency of successful requests (exact: every duration is
// recorded and sorted) and the ratios to both baselines at the same
// concurrency, and its own CPU use during the cell (client and server share
// the machine's cores, so a busy load generator lowers every figure). It
// then checks the targets of the issue: SOFTWARE-key operations at >= 0.5x
// the bare gin route's rate (--gin-endpoint; without it, kmsd's /healthz)
// and kmsd CPU per operation <= 2.5x gin's at each concurrency, p99 <= 5 ms
// at concurrency 16, p50 <= 0.3 ms at concurrency 1, and HSM-key
// operations at >= 0.8x the SOFTWARE key's rate.
//
// Usage:
//
//	kmsload --endpoint http://127.0.0.1:8400 \
//	    --credentials DATA_DIR/admin-credentials.json \
//	    --ops encrypt,decrypt,generate-data-key,baseline \
//	    --protection SOFTWARE,HSM --concurrency 1,16,64 --duration 5s -o table
//
// Credentials come from --credentials (the JSON file kmsd writes on first
// start, {"access_key_id","secret_access_key","region"}, mode 0600) or from
// KMS_ACCESS_KEY_ID, KMS_SECRET_ACCESS_KEY and KMS_REGION. Without --key-id
// kmsload creates one key per protection level and schedules its deletion
// (7 days, the minimum) when done, unless --keep-keys is given.
//
// kmsload only talks to loopback endpoints (127.0.0.0/8, ::1, localhost)
// unless --allow-remote is given: it is a load generator, not a tool to
// point at someone's production server by accident. Every loop stops by
// itself: each cell is bounded by time and by a request count, and each
// request by --timeout; requests are never retried, so failures are counted
// instead of hidden. The exit status is 1 when any request failed, 2 for
// bad usage.
//
// cmd/kmsload/bench.sh runs the whole benchmark against a freshly built
// kmsd on a private SoftHSM2 token.
package main
