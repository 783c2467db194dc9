// Package nacos is a configcenter.Source backed by Nacos 2.x through the
// official Go SDK, github.com/nacos-group/nacos-sdk-go/v2.
//
// A Source reads one or several dataIds of one namespace and group with
// GetConfig and follows them with ListenConfig (the SDK's gRPC batch listen
// and server push). Each dataId becomes one configcenter.Document, in the
// order given; its Format is the one configured for it or, when empty, is
// inferred by configcenter from the dataId's suffix. The Source never
// decrypts: ENC(...) values stay ciphertext in the State it returns.
//
// What the SDK writes to disk, and how this package contains it:
//
//   - The SDK keeps a snapshot of every config it fetched in its cache dir
//     and writes it with mode 0666 (0777 for directories), next to the
//     executable by default. Config.Dir is required here: the cache goes to
//     Dir/cache and the SDK log to Dir/log, both created 0700, and every
//     file the SDK wrote there is narrowed to 0600 after each fetch. The
//     snapshot holds the content exactly as stored in Nacos, so ENC values
//     stay ciphertext on disk; decrypted values are never published back.
//   - The SDK reads "<dataId>@@<group>@@<namespace>_failover" files in its
//     cache dir and silently prefers them over the server. A Source refuses
//     to use a dataId that has such a file unless Config.AllowFailover is
//     set.
//   - When the server is unreachable the SDK falls back to the disk
//     snapshot. That is off unless Config.SnapshotFallback is set, so a
//     start-up without Nacos fails clearly.
//   - The SDK interpolates raw config content into some of its log
//     messages (the "[data-received]" info line, the cache-write error, the
//     request-retry error). Its process-wide logger is replaced by one that
//     keeps only the message templates and non-string arguments, at warn
//     level or above by default, and sends them to Config.Logger.
//
// Watch re-reads a dataId from the server whenever the SDK reports a change
// (the SDK calls its listeners from unordered goroutines, so their content
// is not used) and every Config.ResyncInterval: nacos-sdk-go v2.3.2 can drop
// a push that arrives while it is still handling the answer to its own batch
// listen, and would otherwise notice the change only at its 5-minute full
// sync. A server that stays unreachable reaches onError through these reads.
//
// Whole-file encryption through the SDK's config filter chain (Nacos's
// "cipher-" dataId convention) is not offered: nacos-sdk-go v2.3.2 does not
// let a client register its own filter. ConfigClient keeps its chain in the
// unexported field configFilterChainManager, which
// NewConfigClientWithRamCredentialProvider (clients/config_client/
// config_client.go) fills with a fresh filter.NewConfigFilterChainManager()
// and, only when ClientConfig.OpenKMS is set, the Alibaba Cloud KMS
// DefaultConfigEncryptionFilter; IConfigClient has no method to add a
// filter, and the listener callback (vo.Listener) receives only the content,
// never the encryptedDataKey stored beside it.
//
// Renewer (opt-in) re-encrypts ENC values of a Source's dataIds under their
// keys' primary versions and publishes them back with the read content's
// MD5 as CasMd5 (see configcenter.RenewText).
package nacos
