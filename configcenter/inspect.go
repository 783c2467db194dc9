package configcenter

// EncryptedValue is one ENC marker found in a document.
type EncryptedValue struct {
	// Path is the dotted config path ("db.password", "hosts[1]").
	Path string
	// Ciphertext is the decoded blob (kmsclient.ParseCiphertextHeader
	// reads its key id and version).
	Ciphertext []byte
}

// FindEncrypted parses d and returns every ENC marker in it with its path,
// in path order, without decrypting anything: for tooling such as
// `kmsctl config inspect`. The zero Marker is ENC( and ); embedded also
// finds markers inside longer strings.
func FindEncrypted(d Document, m Marker, embedded bool) ([]EncryptedValue, error) {
	raw, err := ParseDocument(d)
	if err != nil {
		return nil, err
	}
	m = m.orDefault()
	var out []EncryptedValue
	var errs []error
	walk(raw, "", func(p, s string, _ func(string)) {
		spans, err := findMarkers(s, m, embedded)
		if err != nil {
			errs = append(errs, &PathError{Path: p, Err: err})
			return
		}
		for _, sp := range spans {
			out = append(out, EncryptedValue{Path: p, Ciphertext: sp.Blob})
		}
	})
	if len(errs) > 0 {
		return nil, joinBounded(errs)
	}
	return out, nil
}
