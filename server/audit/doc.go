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
// Writes use group commit: one Append at a time per replica leads, appending
// the queued records in small batches, one transaction per batch (a lone
// request commits its own record, without a goroutine switch), and Append returns
// only once the caller's batch is durable. If the batch cannot be written,
// every Append in it returns an error wrapping ErrUnavailable and the caller
// must fail its request (fail closed); the chain continues from the last
// durable record. Replicas never share a lock: each has its own chain
// (Config.ReplicaID must be unique per running process and stable across
// restarts; a Logger resumes its chain from the last stored record).
//
// State changes use two records: an intent (Result ResultIntent), made
// durable before the change is attempted, and the outcome, whose
// Details[DetailIntent] is the intent's seq (AppendHead returns it). A
// change is therefore never made without a durable record; an intent
// without an outcome (the outcome write failed after the change, or the
// request is in flight) is listed by Verify in Report.OutcomeUnknown.
// One transaction for the change and its record is not possible with
// group commit: a batch holds many requests' records.
//
// Sensitive values (encryption context values, for example) must never be
// stored as such: put HMACValue(key, value) into Record.Details instead.
//
// Tail truncation: deleting the newest records of a chain (or a whole
// chain) leaves a valid, shorter chain, so the chain alone cannot show it.
// Anchors close that gap: with Config.Anchors the Logger writes a signed
// Anchor (replica, seq, hash, time, HMAC under a subkey of the chain key)
// of its head every Config.AnchorInterval while the chain grows and at
// Close, to an AnchorFile (0600, fsynced) and its log. NewLogger refuses to
// resume a chain that ends below, or differs from, its last anchor
// (ErrBelowAnchor), so freed seqs are never reused; Verify, given the
// anchors' heads, reports an anchored record that is gone or changed
// (ReasonAnchor). The bound: only the records written after the last
// anchor, at most AnchorInterval's worth (none after a clean Close), can be
// deleted without detection; copy anchors off the machine (the log lines
// are meant for a log shipper) to protect them from whoever can edit the
// data directory.
package audit
