package kmsclient

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// ListAuditInput pages ListAudit. Zero fields are not sent.
type ListAuditInput struct {
	Limit int
	After string // Next of the previous page
}

// AuditPage is one page of audit records. Records are passed through as
// the server's JSON objects (the record schema belongs to the server);
// Next is empty on the last page.
type AuditPage struct {
	Records []json.RawMessage `json:"records"`
	Next    string            `json:"next"`
}

// UnmarshalJSON accepts next as a string, a number or null.
func (p *AuditPage) UnmarshalJSON(b []byte) error {
	var raw struct {
		Records []json.RawMessage `json:"records"`
		Next    flexString        `json:"next"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	p.Records, p.Next = raw.Records, string(raw.Next)
	return nil
}

// AuditVerifyResult is the answer of VerifyAudit. FirstBroken is nil when
// the hash chains are intact.
type AuditVerifyResult struct {
	OK          bool        `json:"ok"`
	Checked     int64       `json:"checked"`
	FirstBroken *AuditBreak `json:"first_broken"`
	// Heads are the newest verified record of every chain checked.
	Heads []AuditHead `json:"heads"`
	// ResumedFrom are the heads the server resumed from (records before
	// them were verified earlier and not read again).
	ResumedFrom []AuditHead `json:"resumed_from,omitempty"`
	// OutcomeUnknown lists intent records of state changes without an
	// outcome record (at most 100; OutcomeUnknownCount counts all): the
	// change may or may not have been made.
	OutcomeUnknown      []AuditIntent `json:"outcome_unknown,omitempty"`
	OutcomeUnknownCount int64         `json:"outcome_unknown_count,omitempty"`
}

// AuditIntent names an intent record whose outcome is unknown.
type AuditIntent = kmsapi.AuditIntent

// AuditHead names the newest record of one replica's chain; saved outside
// the database, it is an anchor for a later VerifyAuditAnchored.
type AuditHead struct {
	Replica string `json:"replica"`
	Seq     int64  `json:"seq"`
	Hash    string `json:"hash"`
}

// AuditBreak locates the first record whose chain check failed.
type AuditBreak struct {
	Replica string `json:"replica"`
	Seq     int64  `json:"seq"`
	Reason  string `json:"reason"`
}

// UnmarshalJSON accepts replica as a string or a number.
func (a *AuditBreak) UnmarshalJSON(b []byte) error {
	var raw struct {
		Replica flexString `json:"replica"`
		Seq     int64      `json:"seq"`
		Reason  string     `json:"reason"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*a = AuditBreak{Replica: string(raw.Replica), Seq: raw.Seq, Reason: raw.Reason}
	return nil
}

// ListAudit returns one page of audit records.
func (c *Client) ListAudit(ctx context.Context, in ListAuditInput) (*AuditPage, error) {
	q := url.Values{}
	if in.Limit > 0 {
		q.Set("limit", strconv.Itoa(in.Limit))
	}
	setIf(q, "after", in.After)
	var out AuditPage
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/audit", query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// VerifyAudit asks the server to check the audit hash chains.
func (c *Client) VerifyAudit(ctx context.Context) (*AuditVerifyResult, error) {
	return c.VerifyAuditAnchored(ctx, nil)
}

// VerifyAuditAnchored is VerifyAudit that also checks every chain against
// anchors (heads saved earlier): an anchored record that is gone or
// changed, a truncated tail for instance, breaks the chain.
func (c *Client) VerifyAuditAnchored(ctx context.Context, anchors []AuditHead) (*AuditVerifyResult, error) {
	return c.VerifyAuditWith(ctx, VerifyAuditInput{Anchors: anchors})
}

// VerifyAuditInput are the options of VerifyAuditWith.
type VerifyAuditInput struct {
	Anchors []AuditHead
	// Resume lets the server start from the heads of its last intact
	// verification instead of reading every record (faster; edits of
	// records verified before go unnoticed until the next full check).
	Resume bool
}

// AuditSegment is a sealed, verified run of one replica's records
// (ExportAudit). Records are the server's JSON records as sent.
type AuditSegment struct {
	Records []json.RawMessage `json:"records"`
	Seal    AuditSeal         `json:"seal"`
}

// AuditSeal closes an AuditSegment; pass it to MarkAuditExported once the
// segment is stored safely.
type AuditSeal struct {
	Replica  string `json:"replica"`
	FirstSeq int64  `json:"first_seq"`
	LastSeq  int64  `json:"last_seq"`
	PrevHash string `json:"prev_hash"`
	LastHash string `json:"last_hash"`
	Count    int64  `json:"count"`
	Time     string `json:"time"`
	Sig      string `json:"sig"`
}

// ExportAudit fetches the next sealed segment of replica's chain: after
// seq after, or after the last segment marked exported when after < 0. It
// fails with a NotFound APIError when there is nothing to export.
func (c *Client) ExportAudit(ctx context.Context, replica string, after int64, limit int) (*AuditSegment, error) {
	q := url.Values{"replica": {replica}}
	if after >= 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out AuditSegment
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/audit/export", query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// MarkAuditExported records that the segment closed by seal is stored
// outside the database; audit retention may then delete its records.
func (c *Client) MarkAuditExported(ctx context.Context, seal AuditSeal) error {
	return c.do(ctx, call{method: http.MethodPost, path: "/v1/audit/exports", in: seal})
}

// VerifyAuditWith is VerifyAudit with options.
func (c *Client) VerifyAuditWith(ctx context.Context, in VerifyAuditInput) (*AuditVerifyResult, error) {
	anchors := in.Anchors
	q := url.Values{}
	if in.Resume {
		q.Set("resume", "true")
	}
	for _, a := range anchors {
		q.Add("anchor", a.Replica+":"+strconv.FormatInt(a.Seq, 10)+":"+a.Hash)
	}
	var out AuditVerifyResult
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/audit/verify", query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// flexString decodes a JSON string, number or null into a string.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = flexString(n.String())
		return nil
	}
}
