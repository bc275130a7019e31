package plugin

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

type rotateOptions struct {
	wait, endGrace bool
	tokenHash      string
}

func (r *root) rotateCommand() *cobra.Command {
	o := &rotateOptions{}
	cmd := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Replace a key's token now, through the " + keysv1.RotateAnnotation + " annotation",
		Long: `Ask the operator to replace a key's token: the command sets the
` + keysv1.RotateAnnotation + ` annotation to the current time, and the operator
writes a new token into the key's Secret.

The previous token keeps working for the key's spec.rotation.gracePeriod
(default 0: it stops at once). With --wait the command waits until the new
token's hash is in status and reports until when the previous token works.

A hash-only key (spec.tokenHash) has no token the operator could replace:
give the hash of its new token with --token-hash, and the command sets
spec.tokenHash (in GitOps, change the manifest instead).

When a token has leaked, --end-grace-period also sets the
` + keysv1.EndGracePeriodAnnotation + ` annotation in the same edit: every
previous token, the one replaced now included, stops working at once.`,
		Example: `  kubectl apikey rotate billing --wait
  kubectl apikey rotate billing && kubectl rollout restart deploy/billing
  kubectl apikey rotate billing --end-grace-period --wait    # a leaked token: no grace at all
  kubectl apikey rotate partner --token-hash "$(apikey-operator hash < partner-new.token)" --wait`,
		Args:              oneKey,
		ValidArgsFunction: r.completeKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.rotate(cmd, args[0], o)
		},
	}
	cmd.Flags().BoolVar(&o.wait, "wait", false, "Wait until the new token is issued and report the previous token's grace period (see --timeout).")
	cmd.Flags().StringVar(&o.tokenHash, "token-hash", "", "For a hash-only key: the sha256:<hex> hash of its new token (apikey-operator hash).")
	cmd.Flags().BoolVar(&o.endGrace, "end-grace-period", false, "Also end every grace period now: no previous token works any more, the one replaced now included (for a leaked token).")
	return cmd
}

func (r *root) rotate(cmd *cobra.Command, name string, o *rotateOptions) error {
	c, ns, err := r.session()
	if err != nil {
		return err
	}
	before, err := getKey(cmd.Context(), c, ns, name)
	if err != nil {
		return err
	}
	// A new value each time: the operator rotates when the value changes.
	value := strconv.FormatInt(time.Now().UnixNano(), 10)
	patch, err := rotatePatch(before, o, value)
	if err != nil {
		return err
	}
	if err := c.Patch(cmd.Context(), before, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("rotate ApiKey %s/%s: %w", ns, name, err)
	}
	fmt.Fprintf(r.streams.Out, "apikey %s/%s: rotation requested\n", ns, name)
	if !o.wait {
		return nil
	}
	oldHash := before.Status.Hash
	after, err := waitFor(cmd.Context(), c, ns, name, r.timeout, "the rotation", func(k *keysv1.ApiKey) bool {
		if before.HashOnly() {
			return k.Status.Hash == o.tokenHash && (!o.endGrace || k.Status.ObservedEndGracePeriodAnnotation == value)
		}
		return k.Status.ObservedRotateAnnotation == value && k.Status.Hash != "" && k.Status.Hash != oldHash &&
			(!o.endGrace || k.Status.ObservedEndGracePeriodAnnotation == value)
	})
	if err != nil {
		return err
	}
	where := fmt.Sprintf("new token %s... in Secret %s", after.Status.KeyPrefix, after.IssuedSecretName())
	if after.HashOnly() {
		where = "it verifies the token of spec.tokenHash " + after.Status.Hash
	}
	fmt.Fprintf(r.streams.Out, "apikey %s/%s rotated: %s; %s\n", ns, name, where, graceReport(after, oldHash, o.endGrace, time.Now()))
	return nil
}

// rotatePatch is the edit that rotates a key: the rotate annotation for a
// minted key, a new spec.tokenHash for a hash-only one.
func rotatePatch(k *keysv1.ApiKey, o *rotateOptions, value string) ([]byte, error) {
	annotations := map[string]string{}
	if o.endGrace {
		annotations[keysv1.EndGracePeriodAnnotation] = value
	}
	body := map[string]any{"metadata": map[string]any{"annotations": annotations}}
	switch {
	case k.HashOnly() && o.tokenHash == "":
		return nil, fmt.Errorf("apikey %s/%s is hash-only: give the hash of its new token with --token-hash (apikey-operator hash --mint FILE makes both)", k.Namespace, k.Name)
	case k.HashOnly():
		if o.tokenHash == string(k.Spec.TokenHash) {
			return nil, fmt.Errorf("--token-hash is the key's current hash: give the hash of a new token")
		}
		body["spec"] = map[string]any{"tokenHash": o.tokenHash}
	case o.tokenHash != "":
		return nil, fmt.Errorf("--token-hash is for hash-only keys; apikey %s/%s has its token minted into a Secret, rotate it without --token-hash", k.Namespace, k.Name)
	default:
		annotations[keysv1.RotateAnnotation] = value
	}
	return json.Marshal(body)
}

// graceReport says until when the rotated-out token still works.
func graceReport(k *keysv1.ApiKey, oldHash string, endGrace bool, now time.Time) string {
	if endGrace {
		return "every previous token stopped working at once (--end-grace-period)"
	}
	for _, p := range k.Status.PreviousHashes {
		if p.Hash == oldHash && oldHash != "" {
			return fmt.Sprintf("the previous token works until %s (grace period %s)",
				p.ValidUntil.UTC().Format(time.RFC3339), human(p.ValidUntil.Sub(now).Round(time.Second)))
		}
	}
	return "the previous token stopped working at once (no spec.rotation.gracePeriod)"
}
