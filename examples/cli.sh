#!/bin/sh
# What a security admin runs first against a fresh kmsd, with kmsctl.
#
#   make run                                  # terminal 1: kmsd on 127.0.0.1:8400
#   make build && KMSCTL=bin/kmsctl sh examples/cli.sh   # terminal 2, from the repository root
#
# Settings (environment):
#   KMSCTL        the kmsctl binary (default: kmsctl on PATH)
#   CREDENTIALS   the file kmsd wrote on first start (default .kmsgo-data/admin-credentials.json)
#   KMS_ENDPOINT  kmsd URL (default http://127.0.0.1:8400)
#
# Running it twice is fine: an existing key is reused; each run issues a new
# app access key and a new ENC(...) value (ciphertexts are randomized).
set -eu

KMSCTL=${KMSCTL:-kmsctl}
CREDENTIALS=${CREDENTIALS:-.kmsgo-data/admin-credentials.json}
ENDPOINT=${KMS_ENDPOINT:-http://127.0.0.1:8400}

# 1. Save the bootstrap admin credentials as the default profile in
#    ~/.config/kmsgo/credentials (mode 0600). Afterwards every kmsctl command
#    uses it; the secret never appears on a command line.
echo "== configure"
"$KMSCTL" configure --from-file "$CREDENTIALS" --endpoint "$ENDPOINT"

# 2. A master key for the orders service, with an alias. Applications and
#    policies name the alias, so the key behind it can be replaced later.
echo "== master key alias/orders-config"
if "$KMSCTL" keys describe alias/orders-config 2>/dev/null; then
	echo "(already there: reused)"
else
	"$KMSCTL" keys create --alias alias/orders-config --description "orders service: config secrets"
fi

# 3. Encrypt a value for the config center (Nacos, etcd, a file). The value
#    comes from stdin so that it stays out of shell history; paste the
#    printed ENC(...) into the config, e.g. db.password: ENC(...).
echo "== ENC value for the config center"
printf '%s' 's3cret-db-password' | "$KMSCTL" enc --key alias/orders-config

# 4. An access key for the orders application: it may encrypt, decrypt and
#    generate data keys with keys whose alias matches alias/orders-*, and
#    nothing else (no key management, no other keys). Its secret is shown
#    once: hand it to the application's secret store, not to the config
#    center.
echo "== app access key"
"$KMSCTL" access-keys create --description orders-svc \
	--policy '{"statements":[{"effect":"Allow","actions":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"],"resources":["alias/orders-*"]}]}'

# 5. Every call above is in the tamper-evident audit log.
echo "== audit"
"$KMSCTL" audit verify
