package awsapi_test

import (
	"errors"
	"fmt"

	"github.com/kmsgo/kmsgo/server/internal/awsapi"
)

// ExampleARNs_ParseKeyRef shows the key references the AWS protocol
// accepts and the ARNs kmsd answers with.
func ExampleARNs_ParseKeyRef() {
	a := awsapi.ARNs{Region: "local", Account: "123456789012"}
	fmt.Println(a.Key("1234abcd-12ab-34cd-56ef-1234567890ab"))
	for _, ref := range []string{
		"1234abcd-12ab-34cd-56ef-1234567890ab",
		"alias/orders",
		"arn:aws:kms:local:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"arn:aws:kms:local:123456789012:alias/orders",
		"arn:aws:kms:eu-west-1:123456789012:alias/orders",
		"arn:aws:s3:::bucket",
	} {
		r, err := a.ParseKeyRef(ref, true)
		var e *awsapi.Error
		if errors.As(err, &e) {
			fmt.Println(e.Type)
			continue
		}
		fmt.Println(r)
	}
	// Output:
	// arn:aws:kms:local:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
	// 1234abcd-12ab-34cd-56ef-1234567890ab
	// alias/orders
	// 1234abcd-12ab-34cd-56ef-1234567890ab
	// alias/orders
	// NotFoundException
	// InvalidArnException
}
