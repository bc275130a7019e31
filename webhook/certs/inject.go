package certs

import (
	"bytes"
	"context"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// injector writes a CA bundle into the webhook configurations, by name.
type injector struct {
	// reader is uncached: the operator may only get these two objects,
	// by name, and a cache would need list and watch on all of them.
	reader               client.Reader
	writer               client.Writer
	mutating, validating string
}

// inject merges our CA into the caBundle of every webhook of both
// configurations. An empty name skips that configuration.
func (in injector) inject(ctx context.Context, ours []byte, now time.Time) error {
	if in.mutating != "" {
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
		err := in.update(ctx, in.mutating, cfg, ours, now, func() []*[]byte {
			out := make([]*[]byte, len(cfg.Webhooks))
			for i := range cfg.Webhooks {
				out[i] = &cfg.Webhooks[i].ClientConfig.CABundle
			}
			return out
		})
		if err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %q: %w", in.mutating, err)
		}
	}
	if in.validating != "" {
		cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		err := in.update(ctx, in.validating, cfg, ours, now, func() []*[]byte {
			out := make([]*[]byte, len(cfg.Webhooks))
			for i := range cfg.Webhooks {
				out[i] = &cfg.Webhooks[i].ClientConfig.CABundle
			}
			return out
		})
		if err != nil {
			return fmt.Errorf("ValidatingWebhookConfiguration %q: %w", in.validating, err)
		}
	}
	return nil
}

// update reads a configuration, merges the bundles its webhooks hold
// with ours, and writes it back when that changed anything; another
// replica's write in between is a conflict, retried on a fresh read.
func (in injector) update(ctx context.Context, name string, obj client.Object, ours []byte, now time.Time, bundles func() []*[]byte) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := in.reader.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
			return err
		}
		fields := bundles()
		existing := make([][]byte, len(fields))
		for i, f := range fields {
			existing[i] = *f
		}
		merged := mergeBundle(ours, now, existing...)
		changed := false
		for _, f := range fields {
			if !bytes.Equal(*f, merged) {
				*f, changed = merged, true
			}
		}
		if !changed {
			return nil
		}
		return in.writer.Update(ctx, obj)
	})
}
