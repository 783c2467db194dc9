// Package etcd registers the "etcd" config source (configcenter/etcd, over
// go.etcd.io/etcd/client/v3) with the starter. Import it for its side
// effect:
//
//	import _ "github.com/kmsgo/kmsgo/starter/etcd"
//
// and configure it under config.etcd (see kmsgo.example.yaml): each of
// keys holds a whole document, and every key under prefix is one config
// path; they share one client. The etcd password comes from
// KMSGO_CONFIG_ETCD_PASSWORD or a 0600 file, never from etcd.
package etcd

import (
	"errors"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/etcd"
	"github.com/kmsgo/kmsgo/starter"
)

func init() { starter.RegisterSource("etcd", New) }

// New builds one source per key in s.Config.Etcd.Keys and one for its
// Prefix, sharing one client that is closed with the last of them.
func New(s *starter.Settings) ([]configcenter.Source, error) {
	e := s.Config.Etcd
	cfg := clientv3.Config{
		Endpoints:   e.Endpoints,
		Username:    e.Username,
		Password:    e.Password,
		DialTimeout: e.DialTimeout,
		Logger:      zap.NewNop(),
	}
	if t := e.TLS; t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify {
		tc, err := t.Config()
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, err
	}
	var opts []etcd.Options
	for _, k := range e.Keys {
		opts = append(opts, etcd.Options{Key: k, Format: configcenter.Format(e.Format)})
	}
	if e.Prefix != "" {
		opts = append(opts, etcd.Options{Prefix: e.Prefix})
	}
	shared := &sharedClient{cli: cli}
	shared.refs.Store(int64(len(opts)))
	var out []configcenter.Source
	for _, o := range opts {
		src, err := etcd.New(cli, o)
		if err != nil {
			for _, s := range out {
				_ = s.Close()
			}
			return nil, errors.Join(err, cli.Close())
		}
		out = append(out, &source{Source: src, shared: shared})
	}
	return out, nil
}

// sharedClient closes the client when its last source is closed.
type sharedClient struct {
	cli  *clientv3.Client
	refs atomic.Int64
}

type source struct {
	*etcd.Source
	shared *sharedClient
	closed atomic.Bool
}

// Close closes the source and, with the last source, the client.
func (s *source) Close() error {
	err := s.Source.Close()
	if s.closed.CompareAndSwap(false, true) && s.shared.refs.Add(-1) == 0 {
		err = errors.Join(err, s.shared.cli.Close())
	}
	return err
}
