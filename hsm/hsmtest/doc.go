// Package hsmtest is the behaviour suite every hsm.Backend must pass.
//
// A backend's own tests call Run with a constructor:
//
//	func TestConformance(t *testing.T) {
//		hsmtest.Run(t, func(t *testing.T) hsm.Backend {
//			b, err := devhsm.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { b.Close() })
//			return b
//		})
//	}
//
// The suite uses nothing but the hsm.Backend interface, so it runs unchanged
// against the PKCS#11 backend on SoftHSM2 and against hsm/devhsm. Every key it
// creates has an id under a random per-run prefix, so backends returned by
// newBackend may share one token; the suite destroys its keys when done.
//
// Encrypt output is checked as raw parts (an IV of hsm.IVSize bytes and
// ciphertext || tag, interoperable with crypto/cipher), and Decrypt must
// refuse every tampered byte and every part of the wrong size (IVs of 0 to
// 255 bytes, short or oversized ciphertexts, a framed blob passed as parts)
// with exactly hsm.ErrDecrypt, never a panic or another error.
//
// Requirements on newBackend: it returns a ready backend whose root key
// (hsm.RootKeyID, used by WrapKey/UnwrapKey) exists, and Close must be safe to
// call twice (the suite closes one backend itself). newBackend is called a
// few times per Run; the whole suite takes a few seconds on SoftHSM2.
package hsmtest
