// Package nacos registers the "nacos" config source (configcenter/nacos,
// over nacos-sdk-go) with the starter. Import it for its side effect:
//
//	import _ "github.com/kmsgo/kmsgo/starter/nacos"
//
// and configure it under config.nacos (see kmsgo.example.yaml). Nacos
// credentials come from KMSGO_CONFIG_NACOS_PASSWORD /
// KMSGO_CONFIG_NACOS_SECRET_KEY or from 0600 files, never from Nacos.
package nacos

import (
	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/nacos"
	"github.com/kmsgo/kmsgo/starter"
)

func init() { starter.RegisterSource("nacos", New) }

// New builds the Nacos source from s.Config.Nacos.
func New(s *starter.Settings) ([]configcenter.Source, error) {
	n := s.Config.Nacos
	cfg := nacos.Config{
		Servers:   n.Servers,
		Namespace: n.Namespace,
		Group:     n.Group,
		DataIDs:   n.DataIDs,
		Username:  n.Username,
		Password:  n.Password,
		AccessKey: n.AccessKey,
		SecretKey: n.SecretKey,
		Dir:       n.Dir,
		Timeout:   n.Timeout,
		AppName:   "kmsgo-starter",
	}
	if t := n.TLS; t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify {
		cfg.TLS = &nacos.TLS{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: t.InsecureSkipVerify}
	}
	src, err := nacos.New(cfg)
	if err != nil {
		return nil, err
	}
	return []configcenter.Source{src}, nil
}
