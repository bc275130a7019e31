package plugin

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// getKey reads an ApiKey, with an error that says what to do when it is
// missing.
func getKey(ctx context.Context, c client.Client, ns, name string) (*keysv1.ApiKey, error) {
	key := &keysv1.ApiKey{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, key)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("ApiKey %s/%s not found: check the name and the namespace (-n), or list keys with `kubectl apikey list`", ns, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read ApiKey %s/%s: %w", ns, name, err)
	}
	return key, nil
}

// readToken reads the key's token from its Secret.
func readToken(ctx context.Context, c client.Client, k *keysv1.ApiKey) (string, error) {
	if k.HashOnly() {
		return "", fmt.Errorf("apikey %s/%s is hash-only (spec.tokenHash): the cluster holds no token for it, only its hash; the token is wherever it was made", k.Namespace, k.Name)
	}
	s := &corev1.Secret{}
	name := k.IssuedSecretName()
	if err := c.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("secret %s/%s does not exist yet: wait until the key is Ready (`kubectl apikey status %s`)", k.Namespace, name, k.Name)
		}
		return "", fmt.Errorf("read secret %s/%s (you need get on secrets in %s): %w", k.Namespace, name, k.Namespace, err)
	}
	tok := string(s.Data[keysv1.SecretKeyField])
	if tok == "" {
		return "", fmt.Errorf("secret %s/%s has no %q entry yet: wait until the key is Ready", k.Namespace, name, keysv1.SecretKeyField)
	}
	return tok, nil
}

// ready says whether the controller has issued the key for its current
// spec.
func ready(k *keysv1.ApiKey) bool {
	c := meta.FindStatusCondition(k.Status.Conditions, keysv1.ConditionReady)
	return c != nil && c.Status == "True" && c.ObservedGeneration == k.Generation && k.Status.Hash != ""
}

// waitFor polls the key until done says so or the timeout passes. Polling
// every 200ms costs a person nothing and needs no watch permission.
func waitFor(ctx context.Context, c client.Client, ns, name string, timeout time.Duration, what string, done func(*keysv1.ApiKey) bool) (*keysv1.ApiKey, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		k, err := getKey(ctx, c, ns, name)
		if err == nil && done(k) {
			return k, nil
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("ApiKey %s/%s: %s did not happen within %s", ns, name, what, timeout)
			if k != nil {
				if cond := meta.FindStatusCondition(k.Status.Conditions, keysv1.ConditionReady); cond != nil {
					msg += fmt.Sprintf(" (Ready=%s, %s: %s)", cond.Status, cond.Reason, cond.Message)
				}
			}
			if err != nil {
				msg += fmt.Sprintf(" (last error: %v)", err)
			}
			return nil, fmt.Errorf("%s; see `kubectl apikey status %s`, or raise --timeout", msg, name)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// parseDuration reads Go durations and also days ("7d", "30d"), which is
// how people think about expiry and idleness.
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration: use days such as 7d or a Go duration such as 36h", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration: use days such as 7d or a Go duration such as 36h", s)
	}
	return d, nil
}

// human prints a duration the way kubectl prints ages: 3d, 5h, 2m, 10s.
func human(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	case d >= 2*time.Minute:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return fmt.Sprintf("%ds", int(d/time.Second))
}

// relative is "in 6d" or "3h ago".
func relative(t, now time.Time) string {
	if t.After(now) {
		return "in " + human(t.Sub(now))
	}
	return human(now.Sub(t)) + " ago"
}

// completeKeys completes ApiKey names in the current namespace.
func (r *root) completeKeys(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return r.completeNames(cmd, &keysv1.ApiKeyList{})
}

// completeNames lists the names of a kind in the current namespace; any
// error just means no suggestions.
func (r *root) completeNames(cmd *cobra.Command, list client.ObjectList) ([]string, cobra.ShellCompDirective) {
	c, ns, err := r.session()
	if err != nil || c.List(cmd.Context(), list, client.InNamespace(ns)) != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	_ = meta.EachListItem(list, func(o runtime.Object) error {
		if m, err := meta.Accessor(o); err == nil {
			names = append(names, m.GetName())
		}
		return nil
	})
	return names, cobra.ShellCompDirectiveNoFileComp
}

// oneKey is the argument rule of commands that act on one ApiKey.
func oneKey(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return errNoName
	}
	return nil
}

// secretNote says where a key's token is, for people.
func secretNote(k *keysv1.ApiKey) string {
	if k.HashOnly() {
		return "none: hash-only key (spec.tokenHash), the cluster holds no token"
	}
	return fmt.Sprintf("%s (data key %s)", k.IssuedSecretName(), keysv1.SecretKeyField)
}
