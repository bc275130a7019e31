package plugin

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

type createOptions struct {
	role, description, expiresIn string
	tokenHash                    string
	permissions, allowedIPs      []string
	audiences                    []string
	wait, showToken              bool
}

func (r *root) createCommand() *cobra.Command {
	o := &createOptions{}
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an ApiKey, optionally wait until it is Ready and print its token once",
		Long: `Create an ApiKey in the current namespace. The operator mints its token into
the Secret NAME (data key api-key) and keeps only the token's hash in status.

With --show-token the command waits until the key is Ready and prints the
token, and only the token, on standard output: capture it into a secret
store or a variable, never a log. Every other message goes to standard error.

With --token-hash the key is hash-only: it verifies the token whose hash is
given (make both with 'apikey-operator hash --mint FILE'), and the cluster
holds no Secret and no plaintext for it.`,
		Example: `  kubectl apikey create billing --role invoice-reader --expires-in 720h --wait
  kubectl apikey create ci --permission deploy:write --allowed-ip 10.0.0.0/8 --show-token | vault kv put secret/ci api-key=-
  kubectl apikey create partner --permission orders:read --token-hash "$(apikey-operator hash < partner.token)" --wait`,
		Args:              oneKey,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.create(cmd, args[0], o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.role, "role", "", "ApiKeyRole, in the same namespace, whose permissions the key grants.")
	fs.StringArrayVar(&o.permissions, "permission", nil, "Permission the key grants besides its role's, such as invoices:read, tenant.apiKey:* or *; repeat for more.")
	fs.StringArrayVar(&o.audiences, "audience", nil, "Audience the key is made for; it then verifies only where a gateway names one of its audiences. Repeat for more.")
	fs.StringArrayVar(&o.allowedIPs, "allowed-ip", nil, "IP address or CIDR block the key may be used from (v4 or v6); repeat for more. Default: any address.")
	fs.StringVar(&o.expiresIn, "expires-in", "", "Lifetime from now, such as 720h or 90d. Default: the operator's default lifetime (one year).")
	fs.StringVar(&o.description, "description", "", "What the key is for and who holds it.")
	fs.StringVar(&o.tokenHash, "token-hash", "", "Make a hash-only key: the sha256:<hex> hash of a token made elsewhere (apikey-operator hash). No Secret is created.")
	fs.BoolVar(&o.wait, "wait", false, "Wait until the key is Ready (see --timeout).")
	fs.BoolVar(&o.showToken, "show-token", false, "Wait until the key is Ready and print its token on standard output (nothing else goes there).")
	_ = cmd.RegisterFlagCompletionFunc("role", r.completeRoles)
	return cmd
}

func (r *root) create(cmd *cobra.Command, name string, o *createOptions) error {
	key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Name: name}}
	key.Spec.Description = o.description
	if o.tokenHash != "" {
		if o.showToken {
			return fmt.Errorf("--show-token and --token-hash exclude each other: a hash-only key has no token in the cluster to show")
		}
		key.Spec.TokenHash = keysv1.TokenHash(o.tokenHash)
	}
	if o.role != "" {
		key.Spec.RoleRef = &keysv1.RoleReference{Name: o.role}
	}
	for _, p := range o.permissions {
		key.Spec.Permissions = append(key.Spec.Permissions, keysv1.Permission(p))
	}
	for _, a := range o.audiences {
		key.Spec.Audiences = append(key.Spec.Audiences, keysv1.Audience(a))
	}
	for _, ip := range o.allowedIPs {
		key.Spec.AllowedIPs = append(key.Spec.AllowedIPs, keysv1.IPOrCIDR(ip))
	}
	if o.expiresIn != "" {
		d, err := parseDuration(o.expiresIn)
		if err != nil {
			return fmt.Errorf("--expires-in: %w", err)
		}
		key.Spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(d).UTC().Truncate(time.Second)}
	}
	c, ns, err := r.session()
	if err != nil {
		return err
	}
	key.Namespace = ns
	if err := c.Create(cmd.Context(), key); err != nil {
		return fmt.Errorf("create ApiKey %s/%s: %w", ns, name, err)
	}
	// With --show-token, standard output carries the token alone.
	info := r.streams.Out
	if o.showToken {
		info = r.streams.ErrOut
	}
	fmt.Fprintf(info, "apikey %s/%s created\n", ns, name)
	if !o.wait && !o.showToken {
		return nil
	}
	fmt.Fprintf(r.streams.ErrOut, "waiting until %s is Ready...\n", name)
	key, err = waitFor(cmd.Context(), c, ns, name, r.timeout, "becoming Ready", ready)
	if err != nil {
		return err
	}
	fmt.Fprintf(info, "apikey %s/%s is Ready: prefix %s, Secret %s%s\n",
		ns, name, orNone(key.Status.KeyPrefix), secretNote(key), expiresNote(key))
	if !o.showToken {
		return nil
	}
	tok, err := readToken(cmd.Context(), c, key)
	if err != nil {
		return err
	}
	return writeToken(r.streams.Out, tok)
}

func expiresNote(k *keysv1.ApiKey) string {
	if k.Status.ExpiresAt == nil {
		return ""
	}
	return ", expires " + k.Status.ExpiresAt.UTC().Format(time.RFC3339)
}

func writeToken(w io.Writer, tok string) error {
	_, err := fmt.Fprintln(w, tok)
	return err
}

// completeRoles completes ApiKeyRole names in the current namespace.
func (r *root) completeRoles(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	return r.completeNames(cmd, &keysv1.ApiKeyRoleList{})
}
