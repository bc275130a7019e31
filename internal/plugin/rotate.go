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

When a token has leaked, --end-grace-period also sets the
` + keysv1.EndGracePeriodAnnotation + ` annotation in the same edit: every
previous token, the one replaced now included, stops working at once.`,
		Example: `  kubectl apikey rotate billing --wait
  kubectl apikey rotate billing && kubectl rollout restart deploy/billing
  kubectl apikey rotate billing --end-grace-period --wait    # a leaked token: no grace at all`,
		Args:              oneKey,
		ValidArgsFunction: r.completeKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.rotate(cmd, args[0], o)
		},
	}
	cmd.Flags().BoolVar(&o.wait, "wait", false, "Wait until the new token is issued and report the previous token's grace period (see --timeout).")
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
	annotations := map[string]string{keysv1.RotateAnnotation: value}
	if o.endGrace {
		annotations[keysv1.EndGracePeriodAnnotation] = value
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err := c.Patch(cmd.Context(), before, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("annotate ApiKey %s/%s: %w", ns, name, err)
	}
	fmt.Fprintf(r.streams.Out, "apikey %s/%s: rotation requested (%s=%s)\n", ns, name, keysv1.RotateAnnotation, value)
	if !o.wait {
		return nil
	}
	oldHash := before.Status.Hash
	after, err := waitFor(cmd.Context(), c, ns, name, r.timeout, "the rotation", func(k *keysv1.ApiKey) bool {
		return k.Status.ObservedRotateAnnotation == value && k.Status.Hash != "" && k.Status.Hash != oldHash &&
			(!o.endGrace || k.Status.ObservedEndGracePeriodAnnotation == value)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.streams.Out, "apikey %s/%s rotated: new token %s... in Secret %s; %s\n",
		ns, name, after.Status.KeyPrefix, after.IssuedSecretName(), graceReport(after, oldHash, o.endGrace, time.Now()))
	return nil
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
