// Package softhsmtest gives tests a private SoftHSM2 token and a ready
// p11.Config (or an open *p11.Backend) for it.
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		b := softhsmtest.Backend(t) // closed, and its token deleted, when t ends
//		...
//	}
//
// New(t) returns just the Config (to tweak PoolSize etc. before p11.Open);
// NewToken() does the same without a testing.TB, for examples and TestMain.
//
// Every call makes a new token with its own label and random PINs in one
// token directory per test process. SOFTHSM2_CONF is set once per process
// with os.Setenv (not t.Setenv), so tests using this package may call
// t.Parallel; do not set SOFTHSM2_CONF yourself in such a process. Tokens
// are initialised in-process with p11.InitToken, because SoftHSM does not
// see tokens that softhsm2-util creates after the module was initialised in
// this process; softhsm2-util only deletes them when the test ends.
//
// The module is $KMS_PKCS11_MODULE or the first of the usual Debian/Ubuntu
// paths. When SoftHSM2 is missing the test fails (it is never skipped) with
// "install SoftHSM2: apt-get install -y softhsm2".
//
// A PKCS#11 module is process-wide: a fault in one Backend re-initialises it
// and every other Backend in the test process sees ErrUnavailable for a few
// milliseconds. Tests that inject faults must not run in parallel with
// others.
package softhsmtest
