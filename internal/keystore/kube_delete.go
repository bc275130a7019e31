package keystore

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/apikey-operator/apikey-operator/internal/access"
)

func (s *Kube) Delete(ctx context.Context, sc access.Scopes, ns string, ref Ref) (_ *Key, err error) {
	w := &write{op: "delete", ns: ns, name: ref.String()}
	defer func() { s.record(ctx, w, err) }()
	if err := s.authorize(ctx, sc, ns, access.Delete); err != nil {
		return nil, err
	}
	key, err := s.get(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	w.key = key
	view := s.view(ctx, key)
	// The UID precondition makes sure a key re-created under the same
	// name meanwhile is not the one deleted.
	uid := key.UID
	if err := s.Client.Delete(ctx, key.DeepCopy(), client.Preconditions{UID: &uid}); err != nil {
		return nil, writeError(err, view.Name)
	}
	s.dropSecrets(ctx, key)
	w.done = true
	return view, nil
}
