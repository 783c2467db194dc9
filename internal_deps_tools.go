//go:build tools

// Package kmsgo pins dependencies that parallel work is adding; removed once real code imports them.
package kmsgo

import (
	_ "github.com/aws/aws-sdk-go-v2/service/kms"
	_ "github.com/knadh/koanf/parsers/json"
	_ "github.com/knadh/koanf/parsers/toml/v2"
	_ "github.com/knadh/koanf/parsers/yaml"
	_ "github.com/knadh/koanf/providers/confmap"
	_ "github.com/knadh/koanf/providers/rawbytes"
	_ "github.com/knadh/koanf/v2"
	_ "github.com/nacos-group/nacos-sdk-go/v2/clients"
	_ "go.etcd.io/etcd/client/v3"
	_ "go.etcd.io/etcd/server/v3/embed"
	_ "go.uber.org/goleak"
)
