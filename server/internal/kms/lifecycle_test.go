package kms_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/store"
)

func TestCreateKeyValidation(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		cases := []kms.CreateKeyInput{
			{KeySpec: "AES_512"},
			{KeySpec: kms.KeySpecAES128}, // only for imported material
			{ProtectionLevel: "CLOUD"},
			{Origin: "AWS"},
			{Description: string(make([]byte, kms.MaxDescriptionLen+1))},
			{Tags: map[string]string{"": "v"}},
			{Alias: "orders"},
			{Alias: "alias/"},
			{Alias: "alias/with space"},
		}
		for _, in := range cases {
			if in.ProtectionLevel == "" {
				in.ProtectionLevel = e.pl
			}
			if _, err := e.svc.CreateKey(e.ctx, in); !isErr(err, kms.ErrValidation) {
				t.Errorf("%+v: err = %v", in, err)
			}
		}
		e.createKey(kms.CreateKeyInput{Alias: "alias/taken"})
		before, _ := e.svc.ListKeys(e.ctx, kms.ListKeysInput{})
		objsBefore, _ := e.hsm.ListKeys(e.ctx, kms.HSMObjectPrefix)
		if _, err := e.svc.CreateKey(e.ctx, kms.CreateKeyInput{ProtectionLevel: e.pl, Alias: "alias/taken"}); !isErr(err, kms.ErrAlreadyExists) {
			t.Fatalf("taken alias: %v", err)
		}
		after, _ := e.svc.ListKeys(e.ctx, kms.ListKeysInput{})
		if len(after.Keys) != len(before.Keys) {
			t.Fatal("a key was created although its alias was taken")
		}
		// The HSM object made for the refused key was destroyed again.
		if objsAfter, _ := e.hsm.ListKeys(e.ctx, kms.HSMObjectPrefix); len(objsAfter) != len(objsBefore) {
			t.Fatalf("HSM objects %d -> %d", len(objsBefore), len(objsAfter))
		}
	})
}

func TestDeletion(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		md := e.createKey(kms.CreateKeyInput{Alias: "alias/doomed"})
		if _, err := e.svc.RotateKey(e.ctx, md.KeyID); err != nil {
			t.Fatal(err)
		}
		blob := e.encrypt(md.KeyID, []byte("data"), nil).CiphertextBlob
		for _, d := range []int{6, 31, -1} {
			if _, err := e.svc.ScheduleKeyDeletion(e.ctx, kms.ScheduleKeyDeletionInput{KeyID: md.KeyID, PendingWindowDays: d}); !isErr(err, kms.ErrValidation) {
				t.Errorf("window %d: %v", d, err)
			}
		}
		got, err := e.svc.ScheduleKeyDeletion(e.ctx, kms.ScheduleKeyDeletionInput{KeyID: md.KeyID})
		if err != nil || got.KeyState != kms.KeyStatePendingDeletion || got.DeletionDate == nil || !got.DeletionDate.Equal(e.clock.Now().Add(30*24*time.Hour)) {
			t.Fatalf("schedule: %+v, %v", got, err)
		}
		if _, err := e.svc.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: blob}); !isErr(err, kms.ErrInvalidKeyState) {
			t.Fatalf("decrypt while pending deletion: %v", err)
		}
		e.clock.Advance(29 * 24 * time.Hour)
		if n, err := e.svc.DestroyDueKeys(e.ctx); err != nil || n != 0 {
			t.Fatalf("destroyed inside the window: %d, %v", n, err)
		}
		// Cancel inside the window restores the key (Disabled, then enable).
		got, err = e.svc.CancelKeyDeletion(e.ctx, md.KeyID)
		if err != nil || got.KeyState != kms.KeyStateDisabled || got.DeletionDate != nil {
			t.Fatalf("cancel: %+v, %v", got, err)
		}
		if _, err := e.svc.EnableKey(e.ctx, md.KeyID); err != nil {
			t.Fatal(err)
		}
		e.mustDecrypt(blob, nil, []byte("data"))

		if _, err := e.svc.ScheduleKeyDeletion(e.ctx, kms.ScheduleKeyDeletionInput{KeyID: md.KeyID, PendingWindowDays: 7}); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(7*24*time.Hour + time.Second)
		if n, err := e.svc.DestroyDueKeys(e.ctx); err != nil || n != 1 {
			t.Fatalf("destroy: %d, %v", n, err)
		}
		got, err = e.svc.DescribeKey(e.ctx, md.KeyID)
		if err != nil || got.KeyState != kms.KeyStateDestroyed {
			t.Fatalf("after destroy: %+v, %v", got, err)
		}
		vs, err := e.st.Versions(e.ctx, md.KeyID)
		if err != nil || len(vs) != 2 {
			t.Fatal(err)
		}
		for _, v := range vs {
			if v.State != store.VersionDestroyed || v.WrappedMaterial != nil || v.DestroyedAt == nil {
				t.Fatalf("version %d not destroyed: %+v", v.Version, v)
			}
		}
		if objs := e.hsmObjects(md.KeyID); len(objs) != 0 {
			t.Fatalf("HSM objects survive destruction: %v", objs)
		}
		// Decrypt fails forever, also on a replica with cold caches.
		for _, svc := range []*kms.Service{e.svc, e.service(e.db)} {
			_, err := svc.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: blob})
			if err == nil {
				t.Fatal("decrypt after destruction succeeded")
			}
			if _, err := svc.EnableKey(e.ctx, md.KeyID); !isErr(err, kms.ErrInvalidKeyState) {
				t.Fatalf("enable destroyed key: %v", err)
			}
		}
		if n, err := e.svc.DestroyDueKeys(e.ctx); err != nil || n != 0 {
			t.Fatalf("second run: %d, %v", n, err)
		}
		// The alias went with the key and its name is free again.
		if _, err := e.svc.GetAlias(e.ctx, "alias/doomed"); !isErr(err, kms.ErrNotFound) {
			t.Fatalf("alias of a destroyed key: %v", err)
		}
		e.createKey(kms.CreateKeyInput{Alias: "alias/doomed"})
	})
}

// TestDestroyResumes interrupts a destruction (HSM fails) and checks the
// next run finishes it.
func TestDestroyResumes(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		if e.pl != kms.ProtectionHSM {
			return
		}
		md := e.createKey(kms.CreateKeyInput{})
		if _, err := e.svc.ScheduleKeyDeletion(e.ctx, kms.ScheduleKeyDeletionInput{KeyID: md.KeyID, PendingWindowDays: 7}); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(8 * 24 * time.Hour)
		e.hsm.failDestroy.Store(true)
		if n, err := e.svc.DestroyDueKeys(e.ctx); n != 1 || err == nil {
			t.Fatalf("interrupted run: %d, %v", n, err)
		}
		if len(e.hsmObjects(md.KeyID)) != 1 {
			t.Fatal("object vanished although destroy failed")
		}
		e.hsm.failDestroy.Store(false)
		if _, err := e.svc.DestroyDueKeys(e.ctx); err != nil {
			t.Fatal(err)
		}
		if objs := e.hsmObjects(md.KeyID); len(objs) != 0 {
			t.Fatalf("objects left: %v", objs)
		}
	})
}

func TestImport(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		for _, spec := range []kms.KeySpec{kms.KeySpecAES256, kms.KeySpecAES128} {
			size := spec.Bits() / 8
			md := e.createKey(kms.CreateKeyInput{Origin: kms.OriginExternal, KeySpec: spec})
			if md.KeyState != kms.KeyStatePendingImport || md.PrimaryVersion != 0 {
				t.Fatalf("created: %+v", md)
			}
			if _, err := e.svc.GetParametersForImport(e.ctx, kms.GetParametersForImportInput{KeyID: md.KeyID, WrappingAlgorithm: "RSAES_PKCS1_V1_5"}); !isErr(err, kms.ErrValidation) {
				t.Fatalf("bad algorithm: %v", err)
			}
			p, err := e.svc.GetParametersForImport(e.ctx, kms.GetParametersForImportInput{KeyID: md.KeyID, WrappingAlgorithm: kms.WrappingAlgorithmOAEPSHA256})
			if err != nil || len(p.ImportToken) == 0 || !p.ValidTo.Equal(e.clock.Now().Add(kms.DefaultImportTokenTTL)) {
				t.Fatalf("params: %+v, %v", p, err)
			}
			material := bytes.Repeat([]byte{0x5a}, size)
			bad := []struct {
				name string
				in   kms.ImportKeyMaterialInput
			}{
				{"wrong size", kms.ImportKeyMaterialInput{ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapForImport(t, p, make([]byte, 48-size))}},
				{"unknown token", kms.ImportKeyMaterialInput{ImportToken: make([]byte, 32), EncryptedKeyMaterial: wrapForImport(t, p, material)}},
				{"plain material", kms.ImportKeyMaterialInput{ImportToken: p.ImportToken, EncryptedKeyMaterial: material}},
				{"no material", kms.ImportKeyMaterialInput{ImportToken: p.ImportToken}},
				{"short token", kms.ImportKeyMaterialInput{ImportToken: p.ImportToken[:8], EncryptedKeyMaterial: wrapForImport(t, p, material)}},
			}
			for _, c := range bad {
				c.in.KeyID = md.KeyID
				if _, err := e.svc.ImportKeyMaterial(e.ctx, c.in); !isErr(err, kms.ErrValidation) {
					t.Fatalf("%s: %v", c.name, err)
				}
			}
			// A token of another key does not work here.
			md2 := e.createKey(kms.CreateKeyInput{Origin: kms.OriginExternal, KeySpec: spec})
			if _, err := e.svc.ImportKeyMaterial(e.ctx, kms.ImportKeyMaterialInput{KeyID: md2.KeyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapForImport(t, p, material)}); !isErr(err, kms.ErrValidation) {
				t.Fatalf("other key's token: %v", err)
			}
			got, err := e.svc.ImportKeyMaterial(e.ctx, kms.ImportKeyMaterialInput{KeyID: md.KeyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapForImport(t, p, material)})
			if err != nil || got.KeyState != kms.KeyStateEnabled || got.PrimaryVersion != 1 || got.Origin != kms.OriginExternal || got.KeySpec != spec {
				t.Fatalf("import: %+v, %v", got, err)
			}
			e.checkVersionsHaveMaterial(md.KeyID)
			// Single use: the token is gone from the store, and the key no
			// longer accepts material even with a fresh wrap under it.
			tid := sha256.Sum256(p.ImportToken)
			if _, err := e.st.GetImportToken(e.ctx, hex.EncodeToString(tid[:])); !isErr(err, store.ErrNotFound) {
				t.Fatalf("import token still stored after use: %v", err)
			}
			if _, err := e.svc.ImportKeyMaterial(e.ctx, kms.ImportKeyMaterialInput{KeyID: md.KeyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapForImport(t, p, material)}); err == nil {
				t.Fatal("second import with the same token succeeded")
			}
			out := e.encrypt(md.KeyID, []byte("byok"), nil)
			e.mustDecrypt(out.CiphertextBlob, nil, []byte("byok"))
			if _, err := e.svc.RotateKey(e.ctx, md.KeyID); !isErr(err, kms.ErrValidation) {
				t.Fatalf("rotate imported key: %v", err)
			}
			if _, err := e.svc.SetRotationPolicy(e.ctx, kms.SetRotationPolicyInput{KeyID: md.KeyID, Enabled: true}); !isErr(err, kms.ErrValidation) {
				t.Fatalf("auto-rotate imported key: %v", err)
			}
			// Expired token.
			p2, err := e.svc.GetParametersForImport(e.ctx, kms.GetParametersForImportInput{KeyID: md2.KeyID})
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(kms.DefaultImportTokenTTL + time.Second)
			if _, err := e.svc.ImportKeyMaterial(e.ctx, kms.ImportKeyMaterialInput{KeyID: md2.KeyID, ImportToken: p2.ImportToken, EncryptedKeyMaterial: wrapForImport(t, p2, material)}); !isErr(err, kms.ErrValidation) {
				t.Fatalf("expired token: %v", err)
			}
		}
	})
}

// TestReplicaTTL checks the documented bound: a key disabled on replica A
// is refused by replica B within B's MetadataTTL.
func TestReplicaTTL(t *testing.T) {
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			dsn, db := dbtest.OpenDSN(t, d)
			const ttl = 150 * time.Millisecond
			e := newEnv(t, db, levels[0], func(c *kms.Config) { c.MetadataTTL = ttl })
			db2, err := dbtest.Connect(d, dsn)
			if err != nil {
				t.Fatal(err)
			}
			b := e.service(db2, func(c *kms.Config) { c.MetadataTTL = ttl })
			md := e.createKey(kms.CreateKeyInput{Alias: "alias/r"})
			blob := e.encrypt(md.KeyID, []byte("x"), nil).CiphertextBlob
			if _, err := b.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: blob}); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if _, err := e.svc.DisableKey(e.ctx, md.KeyID); err != nil {
				t.Fatal(err)
			}
			// A refuses at once.
			if _, err := e.svc.Encrypt(e.ctx, kms.EncryptInput{KeyID: md.KeyID, Plaintext: []byte("x")}); !isErr(err, kms.ErrInvalidKeyState) {
				t.Fatalf("A: %v", err)
			}
			for {
				_, err := b.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: blob})
				if isErr(err, kms.ErrInvalidKeyState) {
					break
				}
				if time.Since(start) > ttl+100*time.Millisecond {
					t.Fatalf("B still decrypts %v after the disable (TTL %v): %v", time.Since(start), ttl, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			// B also sees a rotation made on A for decrypt at once (newer version).
			if _, err := e.svc.EnableKey(e.ctx, md.KeyID); err != nil {
				t.Fatal(err)
			}
			time.Sleep(ttl)
			if _, err := b.Encrypt(e.ctx, kms.EncryptInput{KeyID: md.KeyID, Plaintext: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.RotateKey(e.ctx, md.KeyID); err != nil {
				t.Fatal(err)
			}
			v2 := e.encrypt(md.KeyID, []byte("new"), nil)
			out, err := b.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: v2.CiphertextBlob})
			if err != nil || out.KeyVersion != 2 {
				t.Fatalf("B decrypt of a newer version: %v", err)
			}
		})
	}
}

func TestAliases(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		a := e.createKey(kms.CreateKeyInput{})
		b := e.createKey(kms.CreateKeyInput{})
		if _, err := e.svc.CreateAlias(e.ctx, kms.CreateAliasInput{AliasName: "alias/app", KeyID: a.KeyID}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.CreateAlias(e.ctx, kms.CreateAliasInput{AliasName: "alias/app", KeyID: b.KeyID}); !isErr(err, kms.ErrAlreadyExists) {
			t.Fatalf("duplicate: %v", err)
		}
		for _, in := range []kms.CreateAliasInput{
			{AliasName: "app2", KeyID: a.KeyID},
			{AliasName: "alias/ok", KeyID: "alias/app"},
			{AliasName: "alias/" + string(bytes.Repeat([]byte("x"), kms.MaxAliasNameLen)), KeyID: a.KeyID},
		} {
			if _, err := e.svc.CreateAlias(e.ctx, in); !isErr(err, kms.ErrValidation) {
				t.Errorf("%+v: %v", in, err)
			}
		}
		if _, err := e.svc.CreateAlias(e.ctx, kms.CreateAliasInput{AliasName: "alias/x", KeyID: "00000000-0000-4000-8000-000000000000"}); !isErr(err, kms.ErrNotFound) {
			t.Fatalf("unknown key: %v", err)
		}
		out := e.encrypt("alias/app", []byte("x"), nil)
		if out.KeyID != a.KeyID {
			t.Fatal("alias resolved to the wrong key")
		}
		if got, err := e.svc.UpdateAlias(e.ctx, kms.UpdateAliasInput{AliasName: "alias/app", KeyID: b.KeyID}); err != nil || got.KeyID != b.KeyID {
			t.Fatalf("update: %+v, %v", got, err)
		}
		if out := e.encrypt("alias/app", []byte("x"), nil); out.KeyID != b.KeyID {
			t.Fatal("alias update not honoured by this replica")
		}
		if _, err := e.svc.UpdateAlias(e.ctx, kms.UpdateAliasInput{AliasName: "alias/none", KeyID: b.KeyID}); !isErr(err, kms.ErrNotFound) {
			t.Fatalf("update missing: %v", err)
		}
		if _, err := e.svc.CreateAlias(e.ctx, kms.CreateAliasInput{AliasName: "alias/app-b2", KeyID: b.KeyID}); err != nil {
			t.Fatal(err)
		}
		all, err := e.svc.ListAliases(e.ctx, "")
		if err != nil || len(all) != 2 || all[0].AliasName != "alias/app" || all[1].AliasName != "alias/app-b2" {
			t.Fatalf("list: %+v, %v", all, err)
		}
		ofA, err := e.svc.ListAliases(e.ctx, a.KeyID)
		if err != nil || len(ofA) != 0 {
			t.Fatalf("aliases of a: %+v, %v", ofA, err)
		}
		if got, err := e.svc.GetAlias(e.ctx, "alias/app"); err != nil || got.KeyID != b.KeyID {
			t.Fatalf("get: %+v, %v", got, err)
		}
		md, _ := e.svc.DescribeKey(e.ctx, b.KeyID)
		if len(md.Aliases) != 2 {
			t.Fatalf("describe aliases: %v", md.Aliases)
		}
		if err := e.svc.DeleteAlias(e.ctx, "alias/app"); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DeleteAlias(e.ctx, "alias/app"); !isErr(err, kms.ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
		if _, err := e.svc.Encrypt(e.ctx, kms.EncryptInput{KeyID: "alias/app", Plaintext: []byte("x")}); !isErr(err, kms.ErrNotFound) {
			t.Fatalf("deleted alias still resolves: %v", err)
		}
		if _, err := e.svc.GetAlias(e.ctx, "alias/app"); !isErr(err, kms.ErrNotFound) {
			t.Fatalf("get deleted: %v", err)
		}
	})
}

func TestTagsUpdateAndList(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		var ids []string
		for i := 0; i < 5; i++ {
			md := e.createKey(kms.CreateKeyInput{Tags: map[string]string{"n": fmt.Sprint(i % 2)}})
			ids = append(ids, md.KeyID)
		}
		tags, err := e.svc.TagKey(e.ctx, kms.TagKeyInput{KeyID: ids[0], Tags: map[string]string{"team": "pay", "n": "9"}})
		if err != nil || len(tags) != 2 || tags["n"] != "9" || tags["team"] != "pay" {
			t.Fatalf("tag: %v, %v", tags, err)
		}
		tags, err = e.svc.UntagKey(e.ctx, kms.UntagKeyInput{KeyID: ids[0], TagKeys: []string{"n", "missing"}})
		if err != nil || len(tags) != 1 || tags["team"] != "pay" {
			t.Fatalf("untag: %v, %v", tags, err)
		}
		if got, _ := e.svc.ListTags(e.ctx, ids[0]); len(got) != 1 {
			t.Fatalf("list tags: %v", got)
		}
		many := map[string]string{}
		for i := 0; i < kms.MaxTagsPerKey; i++ {
			many[fmt.Sprint("k", i)] = "v"
		}
		if _, err := e.svc.TagKey(e.ctx, kms.TagKeyInput{KeyID: ids[0], Tags: many}); !isErr(err, kms.ErrValidation) {
			t.Fatalf("too many tags: %v", err)
		}
		if _, err := e.svc.TagKey(e.ctx, kms.TagKeyInput{KeyID: ids[0]}); !isErr(err, kms.ErrValidation) {
			t.Fatalf("no tags: %v", err)
		}
		md, err := e.svc.UpdateKey(e.ctx, kms.UpdateKeyInput{KeyID: ids[1], Description: "new"})
		if err != nil || md.Description != "new" {
			t.Fatalf("update: %+v, %v", md, err)
		}
		if _, err := e.svc.DisableKey(e.ctx, ids[2]); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.CreateAlias(e.ctx, kms.CreateAliasInput{AliasName: "alias/three", KeyID: ids[3]}); err != nil {
			t.Fatal(err)
		}
		// Paging through all keys, two at a time.
		var seen []string
		marker := ""
		for page := 0; ; page++ {
			out, err := e.svc.ListKeys(e.ctx, kms.ListKeysInput{Limit: 2, Marker: marker})
			if err != nil || page > 3 {
				t.Fatalf("page %d: %v", page, err)
			}
			for _, k := range out.Keys {
				seen = append(seen, k.KeyID)
			}
			if out.NextMarker == "" {
				break
			}
			marker = out.NextMarker
		}
		if len(seen) != 5 {
			t.Fatalf("paged %d keys", len(seen))
		}
		for i := 1; i < len(seen); i++ {
			if seen[i-1] >= seen[i] {
				t.Fatal("not ordered by id")
			}
		}
		filters := []struct {
			in   kms.ListKeysInput
			want int
		}{
			{kms.ListKeysInput{State: kms.KeyStateDisabled}, 1},
			{kms.ListKeysInput{State: kms.KeyStateEnabled}, 4},
			{kms.ListKeysInput{Alias: "alias/three"}, 1},
			{kms.ListKeysInput{Tag: "n:1"}, 2},
			{kms.ListKeysInput{Tag: "team:pay"}, 1},
			{kms.ListKeysInput{Tag: "team:PAY"}, 0},
		}
		for _, f := range filters {
			out, err := e.svc.ListKeys(e.ctx, f.in)
			if err != nil || len(out.Keys) != f.want {
				t.Errorf("%+v: %d keys, %v", f.in, len(out.Keys), err)
			}
		}
		for _, bad := range []kms.ListKeysInput{{Limit: -1}, {Limit: 1001}, {State: "Gone"}, {Tag: "novalue"}, {Alias: "x"}} {
			if _, err := e.svc.ListKeys(e.ctx, bad); !isErr(err, kms.ErrValidation) {
				t.Errorf("%+v: %v", bad, err)
			}
		}
		if _, err := e.svc.DescribeKey(e.ctx, "00000000-0000-4000-8000-000000000000"); !isErr(err, kms.ErrNotFound) {
			t.Fatalf("describe unknown: %v", err)
		}
	})
}

// TestDeletionAcrossReplicas runs DestroyDueKeys on two replicas (own
// connection pools, one database) at once, and races CancelKeyDeletion on
// one replica against DestroyDueKeys on the other. Every key ends either
// Destroyed with all material gone, or Disabled with all material intact;
// never in between, and each key is counted as destroyed exactly once.
func TestDeletionAcrossReplicas(t *testing.T) {
	for _, d := range dbtest.Dialects(t) {
		for _, lv := range levels {
			t.Run(d+"/"+lv.name, func(t *testing.T) {
				dsn, db := dbtest.OpenDSN(t, d)
				e := newEnv(t, db, lv)
				db2, err := dbtest.Connect(d, dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if s, err := db2.DB(); err == nil {
						_ = s.Close()
					}
				})
				a, b := e.svc, e.service(db2)
				const n = 4
				type item struct {
					id   string
					blob []byte
				}
				var keys []item
				for i := 0; i < n; i++ {
					md := e.createKey(kms.CreateKeyInput{})
					keys = append(keys, item{md.KeyID, e.encrypt(md.KeyID, []byte("data"), nil).CiphertextBlob})
					if _, err := e.svc.ScheduleKeyDeletion(e.ctx, kms.ScheduleKeyDeletionInput{KeyID: md.KeyID, PendingWindowDays: 7}); err != nil {
						t.Fatal(err)
					}
				}
				e.clock.Advance(7*24*time.Hour + time.Second)
				var wg sync.WaitGroup
				counts := make([]int, 2)
				errs := make([]error, 2)
				cancelErrs := make([]error, n)
				for i, r := range []*kms.Service{a, b} {
					wg.Add(1)
					go func() { defer wg.Done(); counts[i], errs[i] = r.DestroyDueKeys(e.ctx) }()
				}
				for i := 0; i < n; i += 2 { // b cancels every other key meanwhile
					wg.Add(1)
					go func() { defer wg.Done(); _, cancelErrs[i] = b.CancelKeyDeletion(e.ctx, keys[i].id) }()
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						t.Fatalf("DestroyDueKeys: %v", err)
					}
				}
				destroyed := 0
				for i, k := range keys {
					md, err := e.svc.DescribeKey(e.ctx, k.id)
					if err != nil {
						t.Fatal(err)
					}
					vs, err := e.st.Versions(e.ctx, k.id)
					if err != nil || len(vs) != 1 {
						t.Fatalf("versions: %v, %v", vs, err)
					}
					objs := e.hsmObjects(k.id)
					switch md.KeyState {
					case kms.KeyStateDestroyed:
						destroyed++
						if vs[0].State != kms.VersionDestroyed || vs[0].WrappedMaterial != nil || len(objs) != 0 {
							t.Fatalf("key %d destroyed but material left: %+v, objects %v", i, vs[0], objs)
						}
						if i%2 == 0 && !isErr(cancelErrs[i], kms.ErrInvalidKeyState) {
							t.Fatalf("cancel lost the race but says %v", cancelErrs[i])
						}
						if _, err := b.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: k.blob}); err == nil {
							t.Fatal("destroyed key decrypts")
						}
					case kms.KeyStateDisabled:
						if i%2 != 0 || cancelErrs[i] != nil {
							t.Fatalf("key %d Disabled without a successful cancel (%v)", i, cancelErrs[i])
						}
						e.checkVersionsHaveMaterial(k.id)
						if _, err := a.EnableKey(e.ctx, k.id); err != nil {
							t.Fatal(err)
						}
						for _, r := range []*kms.Service{a, b} {
							if out, err := r.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: k.blob}); err != nil || string(out.Plaintext) != "data" {
								t.Fatalf("cancelled key does not decrypt: %v", err)
							}
						}
					default:
						t.Fatalf("key %d ended %s", i, md.KeyState)
					}
				}
				if counts[0]+counts[1] != destroyed || destroyed < n/2 {
					t.Fatalf("replicas counted %d+%d destroyed keys, %d are destroyed", counts[0], counts[1], destroyed)
				}
			})
		}
	}
}
