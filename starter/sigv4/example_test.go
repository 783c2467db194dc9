package sigv4_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/url"

	"github.com/kmsgo/kmsgo/starter/sigv4"
)

// Example signs the AWS SigV4 test suite's get-vanilla request
// (GET / with Host and X-Amz-Date) with the package's building blocks.
func Example() {
	const amzDate = "20150830T123600Z"
	u, _ := url.Parse("http://example.amazonaws.com/")
	scope := sigv4.Scope{Date: amzDate[:8], Region: "us-east-1", Service: "service"}

	cr := []byte("GET\n")
	cr = sigv4.AppendCanonicalPath(cr, u.EscapedPath())
	cr = append(cr, '\n')
	cr, _ = sigv4.AppendCanonicalQuery(cr, u.Query(), nil)
	cr = append(cr, "\nhost:"...)
	cr = sigv4.AppendStripExcessSpaces(cr, u.Host)
	cr = append(cr, "\nx-amz-date:"...)
	cr = sigv4.AppendHeaderValues(cr, []string{amzDate})
	cr = append(cr, "\n\nhost;x-amz-date\n"...)
	cr = append(cr, sigv4.HexSHA256(nil)...)

	key := sigv4.DeriveKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", scope)
	m := hmac.New(sha256.New, key[:])
	m.Write(sigv4.AppendStringToSign(nil, amzDate, scope, cr))
	fmt.Printf("%s Credential=AKIDEXAMPLE/%s, SignedHeaders=host;x-amz-date, Signature=%x\n", sigv4.Algorithm, scope, m.Sum(nil))
	// Output:
	// AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31
}
