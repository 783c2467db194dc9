package httpapi

import (
	"context"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// describeCache keeps DescribeKey answers for the core's MetadataTTL, the
// bound within which the core shows a change made on another replica, so
// that describing a key does not read the database on every request. Every
// successful change made through this server drops it (gen counts those
// changes so that a read racing a change is not cached).
type describeCache struct {
	mu  sync.Mutex
	m   map[string]describeEntry
	gen uint64
}

type describeEntry struct {
	md     kmsapi.KeyMetadata
	loaded time.Time
}

func (d *describeCache) changed() {
	d.mu.Lock()
	d.m = nil
	d.gen++
	d.mu.Unlock()
}

func (d *describeCache) get(ctx context.Context, svc *kms.Service, id string) (*kmsapi.KeyMetadata, error) {
	ttl := svc.MetadataTTL()
	if ttl <= 0 {
		return svc.DescribeKey(ctx, id)
	}
	d.mu.Lock()
	e, ok := d.m[id]
	gen := d.gen
	d.mu.Unlock()
	if ok && time.Since(e.loaded) < ttl {
		md := cloneMeta(e.md)
		return &md, nil
	}
	loaded := time.Now()
	md, err := svc.DescribeKey(ctx, id)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.gen == gen {
		if d.m == nil || len(d.m) > 10000 {
			d.m = map[string]describeEntry{}
		}
		d.m[id] = describeEntry{md: cloneMeta(*md), loaded: loaded}
	}
	d.mu.Unlock()
	return md, nil
}

// cloneMeta copies the reference fields of md so that a cached answer is
// never shared with a caller.
func cloneMeta(md kmsapi.KeyMetadata) kmsapi.KeyMetadata {
	md.Aliases = append([]string{}, md.Aliases...)
	md.Tags = maps.Clone(md.Tags)
	if md.Tags == nil {
		md.Tags = map[string]string{}
	}
	if md.DeletionDate != nil {
		d := *md.DeletionDate
		md.DeletionDate = &d
	}
	if md.Rotation.NextRotationAt != nil {
		d := *md.Rotation.NextRotationAt
		md.Rotation.NextRotationAt = &d
	}
	return md
}

var describeKey = op(pathKey, func(rc *reqCtx, k kms.KeyRef, _ *empty) (*kmsapi.KeyMetadata, error) {
	return rc.srv.describe.get(rc.ctx, rc.srv.kms, k.KeyID)
})

// changes reports whether a request on route r may change key metadata.
func changes(r route) bool {
	return r.Method != http.MethodGet && r.Path != "/v1/encrypt" && r.Path != "/v1/decrypt" &&
		r.Path != "/v1/decrypt/batch" && r.Path != "/v1/generate-data-key" &&
		r.Path != "/v1/generate-data-key-without-plaintext" && r.Path != "/v1/re-encrypt" && r.Path != "/v1/random"
}
