package configcenter

import "errors"

// Sentinel errors. Errors about one config value are *PathError values
// that also match one of these with errors.Is.
var (
	// ErrNoSources: Options.Sources is empty.
	ErrNoSources = errors.New("configcenter: no sources")
	// ErrNoDecrypter: the config holds ENC(...) values but
	// Options.Decrypter is nil.
	ErrNoDecrypter = errors.New("configcenter: ENC value found but no Decrypter configured")
	// ErrMalformedMarker: an ENC(...) marker whose content is not a
	// base64 ciphertext.
	ErrMalformedMarker = errors.New("configcenter: malformed ENC marker")
	// ErrDecrypt: kmsd refused to decrypt a value (the wrapped
	// kmsclient error says why: InvalidCiphertext, a disabled key, ...).
	ErrDecrypt = errors.New("configcenter: cannot decrypt value")
	// ErrKMSUnavailable: the decryption request as a whole failed (kmsd
	// unreachable, 5xx, timeout). A change that fails this way is retried.
	ErrKMSUnavailable = errors.New("configcenter: kms unavailable")
	// ErrParse: a document could not be parsed in its format.
	ErrParse = errors.New("configcenter: cannot parse document")
	// ErrUnknownFormat: a document's format is neither given nor
	// inferable from its name.
	ErrUnknownFormat = errors.New("configcenter: unknown document format")
	// ErrBadOptions: Options are inconsistent (an empty marker prefix, ...).
	ErrBadOptions = errors.New("configcenter: invalid options")
	// ErrClosed: the Config was closed.
	ErrClosed = errors.New("configcenter: closed")
)

// ErrRenewIncomplete: a renewal left some ENC values under an old key
// version (they failed, or their document kept changing); see RenewReport.
var ErrRenewIncomplete = errors.New("configcenter: renewal incomplete")
