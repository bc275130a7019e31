package main

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// stored is what etcd holds under a key prefix: entries and bytes (keys
// and values, as kube-apiserver wrote them: protobuf for built-in kinds,
// JSON for ApiKeys).
type stored struct {
	n     int
	bytes int64
}

// etcdStored reads every entry under each prefix from etcd directly: the
// size of what the operator adds per key, which no API reports.
func (b *bench) etcdStored(ctx context.Context, prefixes ...string) (map[string]stored, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{b.env.EtcdURL()}, DialTimeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	defer c.Close()
	out := map[string]stored{}
	for _, prefix := range prefixes {
		s := stored{}
		from := prefix
		end := clientv3.GetPrefixRangeEnd(prefix)
		for {
			resp, err := c.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(1000))
			if err != nil {
				return nil, fmt.Errorf("etcd get %s: %w", prefix, err)
			}
			for _, kv := range resp.Kvs {
				s.n++
				s.bytes += int64(len(kv.Key) + len(kv.Value))
			}
			if !resp.More || len(resp.Kvs) == 0 {
				break
			}
			from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
		out[prefix] = s
	}
	return out, nil
}

// The etcd prefixes of the benchmark's keys and what the controller adds
// for them (the scale-NNN namespaces).
const (
	etcdKeys    = "/registry/keys.apikey-operator.io/apikeys/scale-"
	etcdSecrets = "/registry/secrets/scale-"
	etcdEvents  = "/registry/events/scale-"
)
