package hsm

import "context"

// DeploymentBinder is implemented by backends whose token can be shared by
// several deployments (PKCS#11). BindDeployment records deployment as the
// owner of the backend's root key on first use and refuses, with an error
// matching ErrForeignRootKey, a root key that another deployment owns,
// unless allowForeign is set (for example after moving a database to a new
// deployment id on purpose).
type DeploymentBinder interface {
	BindDeployment(ctx context.Context, deployment string, allowForeign bool) error
}
