package extauthz

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"google.golang.org/grpc/peer"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// BenchmarkCheck is one Check call without the network: what the gRPC
// path costs on top of the verify core (whose own benchmark, in
// internal/verify, shows 0 allocs/op). The answer is a protobuf message
// that gRPC marshals after Check returns, so this path allocates: the
// figure is reported, not a target.
func BenchmarkCheck(b *testing.B) {
	f := newFixture(b)
	tok := f.key(b, "ns", "bench", func(k *keysv1.ApiKey) { k.Spec.Permissions = perms("invoices:read") })
	req := check{headers: bearer(tok), source: "192.0.2.10", extensions: map[string]string{"permission": "invoices:read"}}.request()
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:5555"))})
	b.ReportAllocs()
	for b.Loop() {
		resp, err := f.srv.Check(ctx, req)
		if err != nil || resp.GetOkResponse() == nil {
			b.Fatal(err, code(resp))
		}
	}
}
