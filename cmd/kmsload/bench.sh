#!/usr/bin/env bash
# bench.sh runs the kmsd load benchmark of the issue end to end on this
# machine: it builds kmsd, kmsload and ginbase (a bare gin route), creates a
# private SoftHSM2 token in a temporary directory, starts ginbase and kmsd
# (configured as `make run` configures it, but on the PKCS#11 backend so
# that both SOFTWARE and HSM keys are real) on free loopback ports, waits
# for /readyz, runs kmsload against both in the same run (gin baseline
# first at every concurrency; server CPU per operation of each process from
# /proc/PID/stat), stops them and removes everything it created.
#
#   cmd/kmsload/bench.sh [kmsload flags...]
#
# Defaults: --ops encrypt,decrypt,generate-data-key,baseline (+ gin)
#           --protection SOFTWARE,HSM --concurrency 1,16,64 --duration 5s -o table
# Any flag given is passed to kmsload after these (the last one wins).
# The temporary directory (kmsd's SQLite database and the token) is made
# under $TMPDIR: TMPDIR=/dev/shm keeps disk fsync latency of a shared
# machine out of the figures (kmsd commits an audit record per request).
#
# Environment:
#   KMSLOAD_HSM=dev         use kmsd's development software backend instead of
#                           SoftHSM2 (HSM-protection keys then live in devhsm)
#   SOFTHSM2_MODULE=path    PKCS#11 module (default /usr/lib/softhsm/libsofthsm2.so)
#   KMSD_HSM_POOL_SIZE=n    PKCS#11 session pool of kmsd (default: number of CPUs)
#   KMSLOAD_KEEP=1          keep the temporary directory (kmsd log, data) for inspection
#   KMSLOAD_AUDIT_SYNC=m    kmsd's audit durability: group (default) or strict
#   KMSLOAD_SQLITE_SYNC=m   set SQLite's synchronous mode (OFF, NORMAL, FULL, EXTRA) in
#                           kmsd's DSN, to measure what the durable per-request audit
#                           commit costs (default: kmsd's own DSN)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
module="${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"
hsm_mode="${KMSLOAD_HSM:-pkcs11}"
case "$hsm_mode" in
pkcs11)
	[[ -r "$module" ]] || { echo "bench.sh: PKCS#11 module $module not found (set SOFTHSM2_MODULE or KMSLOAD_HSM=dev)" >&2; exit 1; }
	command -v softhsm2-util >/dev/null || { echo "bench.sh: softhsm2-util not found" >&2; exit 1; }
	;;
dev) ;;
*) echo "bench.sh: KMSLOAD_HSM must be pkcs11 or dev" >&2; exit 2 ;;
esac

work="$(mktemp -d "${TMPDIR:-/tmp}/kmsload-bench.XXXXXX")"
chmod 700 "$work"
kmsd_pid=""
gin_pid=""
load_pid=""
# stop PID: SIGTERM, up to 10 s to exit, then SIGKILL.
stop() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	if [[ -n "$load_pid" ]] && kill -0 "$load_pid" 2>/dev/null; then
		stop "$load_pid"
	fi
	if [[ -n "$kmsd_pid" ]] && kill -0 "$kmsd_pid" 2>/dev/null; then
		stop "$kmsd_pid"
	fi
	if [[ -n "$gin_pid" ]] && kill -0 "$gin_pid" 2>/dev/null; then
		stop "$gin_pid"
	fi
	if [[ "${KMSLOAD_KEEP:-}" == 1 ]]; then
		echo "bench.sh: kept $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench.sh: building kmsd, kmsload and ginbase" >&2
(cd "$repo" && go build -o "$work/kmsd" ./cmd/kmsd && go build -o "$work/kmsload" ./cmd/kmsload &&
	go build -o "$work/ginbase" ./cmd/kmsload/ginbase)

mkdir -m 700 "$work/data"
if [[ "$hsm_mode" == pkcs11 ]]; then
	mkdir -p "$work/tokens"
	chmod 700 "$work/tokens"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
		"$work/tokens" >"$work/softhsm2.conf"
	export SOFTHSM2_CONF="$work/softhsm2.conf"
	label="kmsload-$$"
	# Random PINs for a throw-away token. softhsm2-util takes them on its
	# command line (once, for this private token); kmsd reads the user PIN
	# from a 0600 file, not from its command line or environment.
	so_pin="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
	umask 077
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$work/user.pin"
	softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$(cat "$work/user.pin")" >/dev/null
	unset so_pin
	export KMSD_HSM_BACKEND=pkcs11
	export KMSD_HSM_MODULE="$module"
	export KMSD_HSM_TOKEN_LABEL="$label"
	unset KMSD_HSM_PIN # the default PIN variable would win over the file
	export KMSD_HSM_PIN_FILE="$work/user.pin"
	export KMSD_HSM_CREATE_ROOT_KEY=true
	echo "bench.sh: kmsd on SoftHSM2 token $label ($module)" >&2
else
	export KMSD_HSM_BACKEND=dev
	echo "bench.sh: kmsd on the development software backend (no PKCS#11)" >&2
fi
export KMSD_LOG_LEVEL=warn
if [[ -n "${KMSLOAD_AUDIT_SYNC:-}" ]]; then
	case "$KMSLOAD_AUDIT_SYNC" in group | strict) ;; *)
		echo "bench.sh: KMSLOAD_AUDIT_SYNC must be group or strict" >&2
		exit 2
		;;
	esac
	export KMSD_AUDIT_SYNC="$KMSLOAD_AUDIT_SYNC"
	echo "bench.sh: audit sync $KMSLOAD_AUDIT_SYNC" >&2
fi
if [[ -n "${KMSLOAD_SQLITE_SYNC:-}" ]]; then
	case "$KMSLOAD_SQLITE_SYNC" in OFF | NORMAL | FULL | EXTRA) ;; *)
		echo "bench.sh: KMSLOAD_SQLITE_SYNC must be OFF, NORMAL, FULL or EXTRA" >&2
		exit 2
		;;
	esac
	export KMSD_DATABASE_DSN="file:$work/data/kms.db?_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=on&_synchronous=$KMSLOAD_SQLITE_SYNC"
	echo "bench.sh: SQLite synchronous=$KMSLOAD_SQLITE_SYNC" >&2
fi

# The bare gin route of the same run (its own process, like kmsd).
"$work/ginbase" --listen 127.0.0.1:0 >"$work/ginbase.out" 2>&1 &
gin_pid=$!
gin_endpoint=""
for _ in $(seq 1 100); do
	gin_endpoint="$(sed -n 's#^ginbase: listening on \(http://127\.0\.0\.1:[0-9][0-9]*\)$#\1#p' "$work/ginbase.out" | head -n 1)"
	[[ -n "$gin_endpoint" ]] && break
	kill -0 "$gin_pid" 2>/dev/null || break
	sleep 0.1
done
if [[ -z "$gin_endpoint" ]]; then
	echo "bench.sh: ginbase did not start:" >&2
	cat "$work/ginbase.out" >&2 || true
	exit 1
fi

# Port 0: the kernel picks a free loopback port; kmsd prints it.
"$work/kmsd" --data-dir "$work/data" --listen 127.0.0.1:0 >"$work/kmsd.out" 2>"$work/kmsd.log" &
kmsd_pid=$!

ready=""
endpoint=""
for _ in $(seq 1 150); do
	if ! kill -0 "$kmsd_pid" 2>/dev/null; then
		break
	fi
	if [[ -z "$endpoint" ]]; then
		endpoint="$(sed -n 's#^kmsd: listening on \(http://127\.0\.0\.1:[0-9][0-9]*\)$#\1#p' "$work/kmsd.out" | head -n 1)"
	fi
	if [[ -n "$endpoint" ]] && curl -fsS --max-time 1 "$endpoint/readyz" >/dev/null 2>&1 &&
		[[ -s "$work/data/admin-credentials.json" ]]; then
		ready=1
		break
	fi
	sleep 0.2
done
if [[ -z "$ready" ]]; then
	echo "bench.sh: kmsd did not become ready; its log:" >&2
	tail -n 30 "$work/kmsd.log" >&2 || true
	exit 1
fi
echo "bench.sh: kmsd ready at $endpoint (pid $kmsd_pid); loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# In the background so that a signal to this script is handled at once:
# cleanup stops kmsload (it prints what it measured so far), then kmsd.
"$work/kmsload" --endpoint "$endpoint" --credentials "$work/data/admin-credentials.json" \
	--gin-endpoint "$gin_endpoint" --gin-pid "$gin_pid" --server-pid "$kmsd_pid" \
	--ops encrypt,decrypt,generate-data-key,baseline --protection SOFTWARE,HSM \
	--concurrency 1,16,64 --duration 5s -o table "$@" &
load_pid=$!
wait "$load_pid"
