package ciphertext

// SetParseHook makes f see the input of every Parse call until the returned
// restore function runs. f must be safe for concurrent use.
func SetParseHook(f func(raw []byte)) (restore func()) {
	old := parseHook.Swap(&f)
	return func() { parseHook.Store(old) }
}
