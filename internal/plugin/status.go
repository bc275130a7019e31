package plugin

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

func (r *root) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME",
		Short: "Show a key's state: conditions, expiry, last use, usage, rotation, role and Secret",
		Long: `Show what a person needs to know about one key: whether it verifies now and
if not why, when it expires, when it was last used and how often, its
rotation state, role and permissions, and the Secret holding its token.
The token itself is never shown: use "kubectl apikey token".`,
		Example:           "  kubectl apikey status billing -n payments",
		Args:              oneKey,
		ValidArgsFunction: r.completeKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, key, err := r.keySession(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			describe(r.streams.Out, key, time.Now())
			return nil
		},
	}
}

// noAudiences says where a key without audiences of its own verifies: it
// carries its role's, if the role has any (internal/verify/key.go).
func noAudiences(k *keysv1.ApiKey) string {
	if k.Spec.RoleRef != nil {
		return "those of role " + k.Spec.RoleRef.Name + ", if it has any; else any gateway of the namespace"
	}
	return "any gateway of the namespace"
}

// describe prints one key for people, in kubectl describe's style.
func describe(out io.Writer, k *keysv1.ApiKey, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	defer w.Flush()
	field := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%s:\t%s\n", name, fmt.Sprintf(format, args...))
	}
	field("Name", "%s", k.Name)
	field("Namespace", "%s", k.Namespace)
	if k.Spec.Name != "" && string(k.Spec.Name) != k.Name {
		field("Display name", "%s", k.Spec.Name)
	}
	if k.Spec.Description != "" {
		field("Description", "%s", k.Spec.Description)
	}
	field("Ready", "%s", readySummary(k))
	field("Enabled", "%t", k.IsEnabled())
	field("Key prefix", "%s", orNone(k.Status.KeyPrefix))
	role := "<none>"
	if k.Spec.RoleRef != nil {
		role = k.Spec.RoleRef.Name
	}
	field("Role", "%s", role)
	field("Permissions", "%s", orNone(joinStrings(k.Spec.Permissions)))
	field("Audiences", "%s", orDefault(joinStrings(k.Spec.Audiences), noAudiences(k)))
	field("Allowed IPs", "%s", orDefault(joinStrings(k.Spec.AllowedIPs), "any"))
	field("Issued", "%s", when(tm(k.Status.IssuedAt), now))
	field("Expires", "%s", when(tm(k.Status.ExpiresAt), now))
	field("Last used", "%s", orDefault(when(tm(k.Status.LastUsedAt), now), "never"))
	field("Usage", "%s", usageSummary(k, now))
	field("Rotation", "%s", rotationSummary(k, now))
	field("Secret", "%s", secretNote(k))
	if len(k.Status.Conditions) > 0 {
		fmt.Fprintln(w, "Conditions:")
		fmt.Fprintln(w, "  Type\tStatus\tReason\tSince\tMessage")
		for _, c := range k.Status.Conditions {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, relative(c.LastTransitionTime.Time, now), c.Message)
		}
	}
}

func readySummary(k *keysv1.ApiKey) string {
	for _, c := range k.Status.Conditions {
		if c.Type == keysv1.ConditionReady {
			s := fmt.Sprintf("%s (%s)", c.Status, c.Reason)
			if c.ObservedGeneration != k.Generation {
				s += " (the operator has not seen the latest change yet)"
			}
			return s
		}
	}
	return "Unknown (the operator has not reconciled the key yet)"
}

func rotationSummary(k *keysv1.ApiKey, now time.Time) string {
	var parts []string
	if rot := k.Spec.Rotation; rot != nil && rot.Period != nil {
		parts = append(parts, "every "+rot.Period.Duration.String())
	} else {
		parts = append(parts, "on request (kubectl apikey rotate)")
	}
	if rot := k.Spec.Rotation; rot != nil && rot.GracePeriod != nil {
		parts = append(parts, "grace period "+rot.GracePeriod.Duration.String())
	}
	if t := tm(k.Status.LastRotatedAt); !t.IsZero() {
		parts = append(parts, "last rotated "+when(t, now))
	}
	for _, p := range k.Status.PreviousHashes {
		if p.ValidUntil.After(now) {
			parts = append(parts, "a previous token works until "+when(p.ValidUntil.Time, now))
		}
	}
	return strings.Join(parts, "; ")
}

// when is an RFC 3339 time with its distance from now, or "" for none.
func when(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("%s (%s)", t.UTC().Format(time.RFC3339), relative(t, now))
}

func joinStrings[S ~string](items []S) string {
	parts := make([]string, len(items))
	for i, s := range items {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

func orNone(s string) string { return orDefault(s, "<none>") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// tm is a nil-safe metav1.Time.
func tm(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

// usageSummary is status.usage for people: totals and the last 24 hours.
func usageSummary(k *keysv1.ApiKey, now time.Time) string {
	u := k.Status.Usage
	if u == nil {
		return "none recorded"
	}
	a24, r24 := u.Last24h(now)
	s := fmt.Sprintf("%d allowed, %d refused in the last 24h; %d allowed, %d refused in total", a24, r24, u.Allowed, u.Refused)
	if u.Since != nil {
		s += " since " + u.Since.UTC().Format(time.RFC3339)
	}
	return s
}
