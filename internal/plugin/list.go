package plugin

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

type listOptions struct {
	allNamespaces             bool
	expiringWithin, unusedFor string
}

func (r *root) listCommand() *cobra.Command {
	o := &listOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List keys, optionally only those expiring soon or unused for a while",
		Long: `List the ApiKeys of the current namespace (or every namespace with -A)
with their state, prefix, expiry and last use.

--expiring-within keeps the keys whose expiry falls within that time from
now (already expired keys included); --unused-for keeps the keys not used
for that long (a key never used counts from its creation). Both take days
(7d) or Go durations (36h); given together, a key must match both.`,
		Example: `  kubectl apikey list
  kubectl apikey list -A --expiring-within 7d
  kubectl apikey list --unused-for 30d`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.list(cmd, o)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "List the keys of every namespace.")
	fs.StringVar(&o.expiringWithin, "expiring-within", "", "Only keys that expire within this time from now, such as 7d.")
	fs.StringVar(&o.unusedFor, "unused-for", "", "Only keys not used for at least this long, such as 30d.")
	return cmd
}

func (r *root) list(cmd *cobra.Command, o *listOptions) error {
	keep, err := o.filter(time.Now())
	if err != nil {
		return err
	}
	c, ns, err := r.session()
	if err != nil {
		return err
	}
	var opts []client.ListOption
	if !o.allNamespaces {
		opts = append(opts, client.InNamespace(ns))
	}
	list := &keysv1.ApiKeyList{}
	if err := c.List(cmd.Context(), list, opts...); err != nil {
		return fmt.Errorf("list ApiKeys: %w", err)
	}
	var keys []keysv1.ApiKey
	for _, k := range list.Items {
		if keep(&k) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Namespace != keys[j].Namespace {
			return keys[i].Namespace < keys[j].Namespace
		}
		return keys[i].Name < keys[j].Name
	})
	if len(keys) == 0 {
		fmt.Fprintln(r.streams.ErrOut, "No ApiKeys found.")
		return nil
	}
	printTable(r.streams.Out, keys, o.allNamespaces, time.Now())
	return nil
}

// filter turns the flags into a predicate.
func (o *listOptions) filter(now time.Time) (func(*keysv1.ApiKey) bool, error) {
	var expiring, unused time.Duration
	var err error
	if o.expiringWithin != "" {
		if expiring, err = parseDuration(o.expiringWithin); err != nil {
			return nil, fmt.Errorf("--expiring-within: %w", err)
		}
	}
	if o.unusedFor != "" {
		if unused, err = parseDuration(o.unusedFor); err != nil {
			return nil, fmt.Errorf("--unused-for: %w", err)
		}
	}
	return func(k *keysv1.ApiKey) bool {
		if o.expiringWithin != "" {
			exp := tm(k.Status.ExpiresAt)
			if exp.IsZero() || exp.After(now.Add(expiring)) {
				return false
			}
		}
		if o.unusedFor != "" {
			last := tm(k.Status.LastUsedAt)
			if last.IsZero() {
				last = k.CreationTimestamp.Time
			}
			if now.Sub(last) < unused {
				return false
			}
		}
		return true
	}, nil
}

func printTable(out io.Writer, keys []keysv1.ApiKey, withNamespace bool, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	defer w.Flush()
	if withNamespace {
		fmt.Fprint(w, "NAMESPACE\t")
	}
	fmt.Fprintln(w, "NAME\tREADY\tENABLED\tPREFIX\tEXPIRES\tLAST USED\t24H OK/REFUSED\tROLE")
	for _, k := range keys {
		if withNamespace {
			fmt.Fprintf(w, "%s\t", k.Namespace)
		}
		role := ""
		if k.Spec.RoleRef != nil {
			role = k.Spec.RoleRef.Name
		}
		fmt.Fprintf(w, "%s\t%s\t%t\t%s\t%s\t%s\t%s\t%s\n", k.Name, readyColumn(&k), k.IsEnabled(),
			k.Status.KeyPrefix, orDefault(relativeOr(tm(k.Status.ExpiresAt), now), "-"),
			orDefault(relativeOr(tm(k.Status.LastUsedAt), now), "never"), usageColumn(&k, now), orDefault(role, "-"))
	}
}

func readyColumn(k *keysv1.ApiKey) string {
	for _, c := range k.Status.Conditions {
		if c.Type == keysv1.ConditionReady {
			if c.Status == "True" {
				return "True"
			}
			return string(c.Status) + " (" + c.Reason + ")"
		}
	}
	return "Unknown"
}

func relativeOr(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	return relative(t, now)
}

// usageColumn is the last 24 hours' verifications: allowed/refused.
func usageColumn(k *keysv1.ApiKey, now time.Time) string {
	if k.Status.Usage == nil {
		return "-"
	}
	a, r := k.Status.Usage.Last24h(now)
	return fmt.Sprintf("%d/%d", a, r)
}
