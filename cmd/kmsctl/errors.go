package main

import (
	"errors"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

var (
	// errInsecureCredentials refuses a credentials file readable by others.
	errInsecureCredentials = kmsclient.ErrInsecureCredentials
	// errNoCredentials means neither flags, environment nor a profile gave
	// an access key.
	// errORMFlags is a missing or malformed flag of the orm commands.
	errORMFlags = errors.New("invalid orm flags")
	// errORMIncomplete: kmsctl orm renew left values it could not renew.
	errORMIncomplete = errors.New("renewal incomplete")
	errNoCredentials = errors.New("no credentials: run `kmsctl configure` or set KMS_ACCESS_KEY_ID and KMS_SECRET_ACCESS_KEY")
)
