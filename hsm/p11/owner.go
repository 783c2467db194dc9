package p11

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"

	"github.com/kmsgo/kmsgo/hsm"
)

// Owner markers. The owner of a root key is recorded in a token data object
// (CKO_DATA, CKA_APPLICATION OwnerApplication, CKA_LABEL OwnerLabelPrefix +
// root key id, CKA_VALUE the deployment id): secret-key objects have no
// CKA_APPLICATION, and a separate object leaves the root key untouched.
const (
	OwnerApplication = "kmsgo"
	OwnerLabelPrefix = "kmsgo-owner:"
)

var _ hsm.DeploymentBinder = (*Backend)(nil)

// BindDeployment records deployment as the owner of this Backend's root key
// when the token has no owner marker for it yet, and otherwise checks that
// the marker names deployment. A root key owned by another deployment fails
// with hsm.ErrForeignRootKey unless allowForeign is set (then it is logged
// and used). Open calls it when Config.Deployment is set.
func (b *Backend) BindDeployment(ctx context.Context, deployment string, allowForeign bool) error {
	if deployment == "" || len(deployment) > 128 {
		return fmt.Errorf("%w: deployment id must be 1-128 bytes", hsm.ErrInvalidArgument)
	}
	var owner []byte
	err := b.withObjects(ctx, "bind deployment", func(s pkcs11.SessionHandle) error {
		var err error
		owner, err = b.readOwner(s)
		if err != nil || owner != nil {
			return err
		}
		_, err = b.mod.ctx.CreateObject(s, b.ownerTemplate(deployment))
		return err
	})
	if err != nil {
		return fmt.Errorf("p11: bind deployment: %w", err)
	}
	if owner == nil {
		b.log.Info("recorded this deployment as the owner of the root key", "root_key", b.cfg.RootKeyID, "deployment", deployment)
		return nil
	}
	if subtle.ConstantTimeCompare(owner, []byte(deployment)) == 1 {
		return nil
	}
	if allowForeign {
		b.log.Warn("using a root key that belongs to another deployment (allowed by configuration)",
			"root_key", b.cfg.RootKeyID, "owner", string(owner), "deployment", deployment)
		return nil
	}
	return fmt.Errorf("%w: root key %q in token %q is owned by deployment %q, this database is deployment %q; "+
		"give this deployment its own root key id, or set hsm.allow_foreign_root_key if this is intended",
		hsm.ErrForeignRootKey, b.cfg.RootKeyID, b.cfg.TokenLabel, owner, deployment)
}

func (b *Backend) ownerLabel() string { return OwnerLabelPrefix + b.cfg.RootKeyID }

func (b *Backend) ownerTemplate(deployment string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, OwnerApplication),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, b.ownerLabel()),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte(deployment)),
	}
}

// readOwner returns the deployment id in the owner marker of the root key,
// or nil when there is none. Several markers (replicas of one deployment
// racing on first start) must agree.
func (b *Backend) readOwner(s pkcs11.SessionHandle) ([]byte, error) {
	p := b.mod.ctx
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, OwnerApplication),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, b.ownerLabel()),
	}
	if err := p.FindObjectsInit(s, tmpl); err != nil {
		return nil, err
	}
	objs, _, err := p.FindObjects(s, findBatch)
	if ferr := p.FindObjectsFinal(s); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, b.checkLogin(s)
	}
	var owner []byte
	for _, h := range objs {
		attrs, err := p.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			return nil, err
		}
		if len(attrs) != 1 || len(attrs[0].Value) == 0 {
			return nil, errors.New("owner marker without a value")
		}
		v := attrs[0].Value
		if owner != nil && string(owner) != string(v) {
			return nil, fmt.Errorf("%w: conflicting owner markers for root key %q", hsm.ErrForeignRootKey, b.cfg.RootKeyID)
		}
		owner = v
	}
	return owner, nil
}
