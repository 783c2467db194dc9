package configcenter_test

import (
	"fmt"

	"github.com/kmsgo/kmsgo/configcenter"
)

// A renewal over several documents adds up their reports; Err is non-nil
// while values are left under an old key version.
func ExampleRenewReport() {
	var total configcenter.RenewReport
	total.Add(configcenter.RenewReport{Documents: 1, Written: 1, Scanned: 3, Renewed: 2, Skipped: 1})
	total.Add(configcenter.RenewReport{Documents: 1, Scanned: 1, Failed: 1,
		Failures: []configcenter.RenewFailure{{Document: "orders.yaml", Line: 4, Reason: "configcenter: cannot decrypt value"}}})
	fmt.Println(total)
	fmt.Println(total.Err())
	// Output:
	// documents 2, written 1, conflicts 0, gave up 0; values scanned 4, renewed 2, skipped 1, failed 1
	// configcenter: renewal incomplete: 1 value(s) failed, 0 document(s) kept changing
}
