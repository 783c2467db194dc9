// Package audit is kmsd's tamper-evident audit log.
//
// Every authenticated request and every key-state change appends one Record
// (time, access key, action, key id/version, result and reason code, request
// id, source address). Records live in the shared SQL database (table
// kms_audit_records) as one hash chain per kmsd replica: each record carries
// the hash of its predecessor, and its own Hash is an HMAC-SHA256, under a
// secret chain key, of a canonical encoding of all its fields. Someone with
// write access to the database but without the chain key therefore cannot
// edit, insert, reorder or delete records (except at the tail, see below)
// without Verify reporting the first broken link.
//
// Writes use group commit: a Logger has one writer per replica that appends
// records in small batches, one transaction per batch, and Append returns
// only once the caller's batch is durable. If the batch cannot be written,
// every Append in it returns an error wrapping ErrUnavailable and the caller
// must fail its request (fail closed); the chain continues from the last
// durable record. Replicas never share a lock: each has its own chain
// (Config.ReplicaID must be unique per running process and stable across
// restarts; a Logger resumes its chain from the last stored record).
//
// Sensitive values (encryption context values, for example) must never be
// stored as such: put HMACValue(key, value) into Record.Details instead.
//
// Limitation: deleting the newest records of a chain (truncating its tail)
// leaves a valid, shorter chain. Detecting that needs an external anchor:
// record Logger.Head() or Report.Heads somewhere the database's writers
// cannot change (a ticket, a log shipper, a WORM bucket) and pass them back
// to Verify, which then reports any anchored record that is gone or changed.
package audit
