package awsapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

const account = "123456789012"

func startWithAccount(t *testing.T) *kmstest.Server {
	return kmstest.Start(t, kmstest.WithConfig(func(c *config.Config) { c.AWS.AccountID = account }))
}

func keyARN(srv *kmstest.Server, id string) string {
	return "arn:aws:kms:" + srv.Region + ":" + account + ":key/" + id
}

func TestKeyLifecycle(t *testing.T) {
	srv := startWithAccount(t)
	c := adminClient(srv)

	ck := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{
		Description: aws.String("orders"),
		Tags:        []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("payments")}},
	}))
	md := ck.KeyMetadata
	id := aws.ToString(md.KeyId)
	arn := keyARN(srv, id)
	if aws.ToString(md.Arn) != arn || aws.ToString(md.AWSAccountId) != account {
		t.Fatalf("arn %s account %s, want %s", aws.ToString(md.Arn), aws.ToString(md.AWSAccountId), arn)
	}
	if md.KeyState != types.KeyStateEnabled || !md.Enabled || md.KeySpec != types.KeySpecSymmetricDefault ||
		md.KeyUsage != types.KeyUsageTypeEncryptDecrypt || md.Origin != types.OriginTypeAwsKms ||
		md.KeyManager != types.KeyManagerTypeCustomer || aws.ToString(md.Description) != "orders" ||
		len(md.EncryptionAlgorithms) != 1 || md.EncryptionAlgorithms[0] != types.EncryptionAlgorithmSpecSymmetricDefault {
		t.Fatalf("metadata %+v", md)
	}
	if d := time.Since(aws.ToTime(md.CreationDate)); d < -time.Minute || d > time.Minute {
		t.Fatalf("creation date %v", md.CreationDate)
	}
	must[*kms.CreateAliasOutput](t)(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/orders"), TargetKeyId: aws.String(id)}))

	// Every form of key reference names the key.
	for _, ref := range []string{id, arn, "alias/orders", "arn:aws:kms:" + srv.Region + ":" + account + ":alias/orders"} {
		d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(ref)})
		if err != nil {
			t.Fatalf("describe %s: %v", ref, err)
		}
		if aws.ToString(d.KeyMetadata.KeyId) != id {
			t.Fatalf("describe %s: key %s", ref, aws.ToString(d.KeyMetadata.KeyId))
		}
	}

	must[*kms.UpdateKeyDescriptionOutput](t)(c.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(arn), Description: aws.String("orders v2")}))
	d := must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)}))
	if aws.ToString(d.KeyMetadata.Description) != "orders v2" {
		t.Fatalf("description %q", aws.ToString(d.KeyMetadata.Description))
	}

	must[*kms.DisableKeyOutput](t)(c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)}))
	d = must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)}))
	if d.KeyMetadata.KeyState != types.KeyStateDisabled || d.KeyMetadata.Enabled {
		t.Fatalf("after DisableKey: %s", d.KeyMetadata.KeyState)
	}
	_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/orders"), Plaintext: []byte("x")})
	if e := wantExc[*types.DisabledException](t, err, http.StatusConflict); !strings.Contains(e.ErrorMessage(), arn) {
		t.Fatalf("message %q does not name %s", e.ErrorMessage(), arn)
	}
	must[*kms.EnableKeyOutput](t)(c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)}))

	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(5)})
	wantCode(t, err, "ValidationException", http.StatusBadRequest)
	sd := must[*kms.ScheduleKeyDeletionOutput](t)(c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}))
	if aws.ToString(sd.KeyId) != arn || sd.KeyState != types.KeyStatePendingDeletion || aws.ToInt32(sd.PendingWindowInDays) != 7 {
		t.Fatalf("schedule deletion %+v", sd)
	}
	if until := time.Until(aws.ToTime(sd.DeletionDate)); until < 6*24*time.Hour || until > 8*24*time.Hour {
		t.Fatalf("deletion date in %v", until)
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
	wantExc[*types.KMSInvalidStateException](t, err, http.StatusConflict)
	_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)})
	wantExc[*types.KMSInvalidStateException](t, err, http.StatusConflict)

	cd := must[*kms.CancelKeyDeletionOutput](t)(c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(id)}))
	if aws.ToString(cd.KeyId) != arn {
		t.Fatalf("cancel deletion key %s", aws.ToString(cd.KeyId))
	}
	d = must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)}))
	if d.KeyMetadata.KeyState != types.KeyStateDisabled || d.KeyMetadata.DeletionDate != nil {
		t.Fatalf("after cancel: %s %v", d.KeyMetadata.KeyState, d.KeyMetadata.DeletionDate)
	}
	_, err = c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(id)})
	wantExc[*types.KMSInvalidStateException](t, err, http.StatusConflict)
}

func TestKeyReferenceErrors(t *testing.T) {
	srv := startWithAccount(t)
	c := adminClient(srv)
	id := aws.ToString(must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId)
	must[*kms.CreateAliasOutput](t)(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/x"), TargetKeyId: aws.String(id)}))

	for _, tc := range []struct {
		name, ref string
		check     func(t *testing.T, err error)
	}{
		{"unknown key id", "11111111-2222-4333-8444-555555555555", func(t *testing.T, err error) {
			wantExc[*types.NotFoundException](t, err, http.StatusNotFound)
		}},
		{"malformed key id", "not-a-key", func(t *testing.T, err error) { wantExc[*types.NotFoundException](t, err, http.StatusNotFound) }},
		{"unknown alias", "alias/nope", func(t *testing.T, err error) { wantExc[*types.NotFoundException](t, err, http.StatusNotFound) }},
		{"other account", "arn:aws:kms:" + srv.Region + ":999999999999:key/" + id, func(t *testing.T, err error) {
			wantExc[*types.NotFoundException](t, err, http.StatusNotFound)
		}},
		{"other region", "arn:aws:kms:eu-west-1:" + account + ":key/" + id, func(t *testing.T, err error) {
			wantExc[*types.NotFoundException](t, err, http.StatusNotFound)
		}},
		{"not a kms arn", "arn:aws:s3:::bucket", func(t *testing.T, err error) {
			wantExc[*types.InvalidArnException](t, err, http.StatusBadRequest)
		}},
		{"truncated arn", "arn:aws:kms:" + srv.Region, func(t *testing.T, err error) {
			wantExc[*types.InvalidArnException](t, err, http.StatusBadRequest)
		}},
		{"too long", strings.Repeat("a", 2049), func(t *testing.T, err error) { wantCode(t, err, "ValidationException", http.StatusBadRequest) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(tc.ref)})
			tc.check(t, err)
		})
	}
	// Key management operations take key ids and key ARNs, not aliases.
	_, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String("alias/x")})
	wantExc[*types.NotFoundException](t, err, http.StatusNotFound)
	_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String("arn:aws:kms:" + srv.Region + ":" + account + ":alias/x")})
	wantExc[*types.NotFoundException](t, err, http.StatusNotFound)
}

func TestCreateKeyRefusals(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	for _, tc := range []struct {
		name string
		in   kms.CreateKeyInput
		code string
	}{
		{"asymmetric", kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048}, "UnsupportedOperationException"},
		{"signing", kms.CreateKeyInput{KeyUsage: types.KeyUsageTypeSignVerify}, "UnsupportedOperationException"},
		{"key policy", kms.CreateKeyInput{Policy: aws.String(`{"Version":"2012-10-17"}`)}, "UnsupportedOperationException"},
		{"multi-region", kms.CreateKeyInput{MultiRegion: aws.Bool(true)}, "UnsupportedOperationException"},
		{"cloudhsm origin", kms.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm}, "UnsupportedOperationException"},
		{"bad origin", kms.CreateKeyInput{Origin: "NOPE"}, "ValidationException"},
		{"reserved tag", kms.CreateKeyInput{Tags: []types.Tag{{TagKey: aws.String("aws:x"), TagValue: aws.String("v")}}}, "TagException"},
		{"duplicate tag", kms.CreateKeyInput{Tags: []types.Tag{{TagKey: aws.String("k"), TagValue: aws.String("1")}, {TagKey: aws.String("k"), TagValue: aws.String("2")}}}, "TagException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateKey(ctx, &tc.in)
			switch tc.code {
			case "UnsupportedOperationException":
				wantExc[*types.UnsupportedOperationException](t, err, http.StatusBadRequest)
			case "TagException":
				wantExc[*types.TagException](t, err, http.StatusBadRequest)
			default:
				wantCode(t, err, tc.code, http.StatusBadRequest)
			}
		})
	}
	// None of the refused requests created a key.
	lk := must[*kms.ListKeysOutput](t)(c.ListKeys(ctx, &kms.ListKeysInput{}))
	if len(lk.Keys) != 0 {
		t.Fatalf("%d keys after refused creations", len(lk.Keys))
	}
}

func TestListKeysPaging(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	want := map[string]bool{}
	for i := 0; i < 5; i++ {
		k := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{}))
		want[aws.ToString(k.KeyMetadata.KeyId)] = true
	}
	first := must[*kms.ListKeysOutput](t)(c.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(2)}))
	if len(first.Keys) != 2 || !first.Truncated || aws.ToString(first.NextMarker) == "" {
		t.Fatalf("first page: %d keys, truncated %v, marker %q", len(first.Keys), first.Truncated, aws.ToString(first.NextMarker))
	}
	// The SDK's paginator follows Truncated/NextMarker.
	got := map[string]bool{}
	pages := 0
	p := kms.NewListKeysPaginator(c, &kms.ListKeysInput{Limit: aws.Int32(2)})
	for p.HasMorePages() {
		page := must[*kms.ListKeysOutput](t)(p.NextPage(ctx))
		pages++
		for _, k := range page.Keys {
			if got[aws.ToString(k.KeyId)] {
				t.Fatalf("key %s listed twice", aws.ToString(k.KeyId))
			}
			got[aws.ToString(k.KeyId)] = true
			if aws.ToString(k.KeyArn) != "arn:aws:kms:"+srv.Region+":000000000000:key/"+aws.ToString(k.KeyId) {
				t.Fatalf("key arn %s", aws.ToString(k.KeyArn))
			}
		}
	}
	if pages != 3 || fmt.Sprint(len(got)) != "5" {
		t.Fatalf("%d pages, %d keys", pages, len(got))
	}
	for id := range want {
		if !got[id] {
			t.Fatalf("key %s not listed", id)
		}
	}
	_, err := c.ListKeys(ctx, &kms.ListKeysInput{Marker: aws.String("garbage")})
	wantExc[*types.InvalidMarkerException](t, err, http.StatusBadRequest)
	_, err = c.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1001)})
	wantCode(t, err, "ValidationException", http.StatusBadRequest)
}

func TestRotation(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	id := aws.ToString(must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId)
	key := aws.String(id)
	old := must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: key, Plaintext: []byte("before rotation")}))

	st := must[*kms.GetKeyRotationStatusOutput](t)(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: key}))
	if st.KeyRotationEnabled {
		t.Fatal("rotation enabled on a new key")
	}
	_, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: key, RotationPeriodInDays: aws.Int32(10)})
	wantCode(t, err, "ValidationException", http.StatusBadRequest)
	must[*kms.EnableKeyRotationOutput](t)(c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: key, RotationPeriodInDays: aws.Int32(180)}))
	st = must[*kms.GetKeyRotationStatusOutput](t)(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: key}))
	if !st.KeyRotationEnabled || aws.ToInt32(st.RotationPeriodInDays) != 180 || !strings.HasSuffix(aws.ToString(st.KeyId), ":key/"+id) {
		t.Fatalf("status %+v", st)
	}
	if until := time.Until(aws.ToTime(st.NextRotationDate)); until < 179*24*time.Hour || until > 181*24*time.Hour {
		t.Fatalf("next rotation in %v", until)
	}
	must[*kms.DisableKeyRotationOutput](t)(c.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: key}))
	if st = must[*kms.GetKeyRotationStatusOutput](t)(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: key})); st.KeyRotationEnabled {
		t.Fatal("rotation still enabled")
	}

	empty := must[*kms.ListKeyRotationsOutput](t)(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: key}))
	if len(empty.Rotations) != 0 || empty.Truncated {
		t.Fatalf("rotations of a new key: %+v", empty.Rotations)
	}
	for i := 0; i < 3; i++ {
		r := must[*kms.RotateKeyOnDemandOutput](t)(c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: key}))
		if !strings.HasSuffix(aws.ToString(r.KeyId), ":key/"+id) {
			t.Fatalf("rotate answer key %s", aws.ToString(r.KeyId))
		}
	}
	var dates []time.Time
	p := kms.NewListKeyRotationsPaginator(c, &kms.ListKeyRotationsInput{KeyId: key, Limit: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		page := must[*kms.ListKeyRotationsOutput](t)(p.NextPage(ctx))
		pages++
		for _, r := range page.Rotations {
			if aws.ToString(r.KeyId) != id {
				t.Fatalf("rotation of key %s", aws.ToString(r.KeyId))
			}
			dates = append(dates, aws.ToTime(r.RotationDate))
		}
	}
	if pages != 2 || len(dates) != 3 {
		t.Fatalf("%d pages, %d rotations", pages, len(dates))
	}
	for i := 1; i < len(dates); i++ {
		if dates[i].Before(dates[i-1]) {
			t.Fatalf("rotations out of order: %v", dates)
		}
	}
	_, err = c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: key, Marker: aws.String("bm90LWEtbWFya2Vy")})
	wantExc[*types.InvalidMarkerException](t, err, http.StatusBadRequest)

	// Old ciphertext still decrypts; new ciphertext uses the new version.
	dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: old.CiphertextBlob}))
	if string(dec.Plaintext) != "before rotation" {
		t.Fatalf("old ciphertext decrypts to %q", dec.Plaintext)
	}
	must[*kms.DisableKeyOutput](t)(c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: key}))
	_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: key})
	wantExc[*types.DisabledException](t, err, http.StatusConflict)
}

func TestAliases(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	k1 := aws.ToString(must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId)
	k2 := aws.ToString(must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId)

	must[*kms.CreateAliasOutput](t)(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(k1)}))
	_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(k2)})
	wantExc[*types.AlreadyExistsException](t, err, http.StatusConflict)
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/has space"), TargetKeyId: aws.String(k2)})
	wantExc[*types.InvalidAliasNameException](t, err, http.StatusBadRequest)
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/aws/s3"), TargetKeyId: aws.String(k2)})
	wantExc[*types.InvalidAliasNameException](t, err, http.StatusBadRequest)
	// kmsd's own limit (the alias column) is below AWS's 256: the core's
	// rule decides, and the answer is still InvalidAliasNameException.
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/" + strings.Repeat("a", 186)), TargetKeyId: aws.String(k2)})
	wantExc[*types.InvalidAliasNameException](t, err, http.StatusBadRequest)
	must[*kms.CreateAliasOutput](t)(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/" + strings.Repeat("a", 185)), TargetKeyId: aws.String(k2)}))
	must[*kms.DeleteAliasOutput](t)(c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/" + strings.Repeat("a", 185))}))
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/new"), TargetKeyId: aws.String("11111111-2222-4333-8444-555555555555")})
	wantExc[*types.NotFoundException](t, err, http.StatusNotFound)

	enc := must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/app"), Plaintext: []byte("p")}))
	if !strings.HasSuffix(aws.ToString(enc.KeyId), ":key/"+k1) {
		t.Fatalf("encrypt via alias used %s", aws.ToString(enc.KeyId))
	}
	must[*kms.UpdateAliasOutput](t)(c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(k2)}))
	enc = must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/app"), Plaintext: []byte("p")}))
	if !strings.HasSuffix(aws.ToString(enc.KeyId), ":key/"+k2) {
		t.Fatalf("encrypt via updated alias used %s", aws.ToString(enc.KeyId))
	}
	_, err = c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/none"), TargetKeyId: aws.String(k2)})
	wantExc[*types.NotFoundException](t, err, http.StatusNotFound)

	// Paging over all aliases with the SDK paginator, in name order.
	names := []string{"alias/app"}
	for i := 0; i < 4; i++ {
		n := fmt.Sprintf("alias/k1-%d", i)
		must[*kms.CreateAliasOutput](t)(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(n), TargetKeyId: aws.String(k1)}))
		names = append(names, n)
	}
	var got []string
	pages := 0
	p := kms.NewListAliasesPaginator(c, &kms.ListAliasesInput{Limit: aws.Int32(2)})
	for p.HasMorePages() {
		page := must[*kms.ListAliasesOutput](t)(p.NextPage(ctx))
		pages++
		for _, a := range page.Aliases {
			got = append(got, aws.ToString(a.AliasName))
			if aws.ToString(a.AliasArn) != "arn:aws:kms:"+srv.Region+":000000000000:"+aws.ToString(a.AliasName) {
				t.Fatalf("alias arn %s", aws.ToString(a.AliasArn))
			}
		}
	}
	if pages != 3 || strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%d pages: %v, want %v", pages, got, names)
	}
	mine := must[*kms.ListAliasesOutput](t)(c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(k2)}))
	if len(mine.Aliases) != 1 || aws.ToString(mine.Aliases[0].AliasName) != "alias/app" || aws.ToString(mine.Aliases[0].TargetKeyId) != k2 || mine.Truncated {
		t.Fatalf("aliases of k2: %+v", mine.Aliases)
	}
	_, err = c.ListAliases(ctx, &kms.ListAliasesInput{Marker: aws.String("!!")})
	wantExc[*types.InvalidMarkerException](t, err, http.StatusBadRequest)

	must[*kms.DeleteAliasOutput](t)(c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/app")}))
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/app")})
	wantExc[*types.NotFoundException](t, err, http.StatusNotFound)
	_, err = c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/app")})
	wantExc[*types.NotFoundException](t, err, http.StatusNotFound)
}

func TestTags(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	key := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId
	var tags []types.Tag
	for i := 0; i < 5; i++ {
		tags = append(tags, types.Tag{TagKey: aws.String(fmt.Sprintf("k%d", i)), TagValue: aws.String(fmt.Sprintf("v%d", i))})
	}
	must[*kms.TagResourceOutput](t)(c.TagResource(ctx, &kms.TagResourceInput{KeyId: key, Tags: tags}))
	var got []string
	pages := 0
	p := kms.NewListResourceTagsPaginator(c, &kms.ListResourceTagsInput{KeyId: key, Limit: aws.Int32(2)})
	for p.HasMorePages() {
		page := must[*kms.ListResourceTagsOutput](t)(p.NextPage(ctx))
		pages++
		for _, tg := range page.Tags {
			got = append(got, aws.ToString(tg.TagKey)+"="+aws.ToString(tg.TagValue))
		}
	}
	if pages != 3 || strings.Join(got, ",") != "k0=v0,k1=v1,k2=v2,k3=v3,k4=v4" {
		t.Fatalf("%d pages: %v", pages, got)
	}
	must[*kms.UntagResourceOutput](t)(c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: key, TagKeys: []string{"k0", "k4"}}))
	lt := must[*kms.ListResourceTagsOutput](t)(c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: key}))
	if len(lt.Tags) != 3 || lt.Truncated {
		t.Fatalf("after untag: %+v", lt.Tags)
	}
	_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: key, Tags: []types.Tag{{TagKey: aws.String("aws:reserved"), TagValue: aws.String("")}}})
	wantExc[*types.TagException](t, err, http.StatusBadRequest)

	var many []types.Tag
	for i := 0; i < 48; i++ { // 3 present + 48 new = 51 > 50
		many = append(many, types.Tag{TagKey: aws.String(fmt.Sprintf("m%02d", i)), TagValue: aws.String("v")})
	}
	_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: key, Tags: many})
	wantExc[*types.LimitExceededException](t, err, http.StatusBadRequest)
	lt = must[*kms.ListResourceTagsOutput](t)(c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: key}))
	if len(lt.Tags) != 3 {
		t.Fatalf("a refused TagResource changed tags: %d", len(lt.Tags))
	}
	_, err = c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: key, Limit: aws.Int32(51)})
	wantCode(t, err, "ValidationException", http.StatusBadRequest)
}
