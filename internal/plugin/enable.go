package plugin

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// enableCommand is `enable` or `disable`: both set spec.enabled.
func (r *root) enableCommand(enable bool) *cobra.Command {
	verb, long := "enable", "Let a disabled key verify again. Its token is unchanged."
	if !enable {
		verb, long = "disable", "Refuse a key at once on every verify replica, keeping its token, so it can be enabled again later. Delete the ApiKey to revoke it for good."
	}
	return &cobra.Command{
		Use:               verb + " NAME",
		Short:             fmt.Sprintf("Set spec.enabled=%t on a key", enable),
		Long:              long,
		Example:           fmt.Sprintf("  kubectl apikey %s billing -n payments", verb),
		Args:              oneKey,
		ValidArgsFunction: r.completeKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, key, err := r.keySession(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"enabled": enable}})
			if err := c.Patch(cmd.Context(), key, client.RawPatch(types.MergePatchType, patch)); err != nil {
				return fmt.Errorf("%s ApiKey %s/%s: %w", verb, key.Namespace, key.Name, err)
			}
			fmt.Fprintf(r.streams.Out, "apikey %s/%s %sd\n", key.Namespace, key.Name, verb)
			return nil
		},
	}
}
