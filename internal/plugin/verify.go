package plugin

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
)

type verifyOptions struct {
	fromStdin   bool
	permissions []string
	audiences   []string
	ip          string
}

// maxKeyLine bounds what is read as a key: tokens are well under 1 KiB.
const maxKeyLine = 4096

func (r *root) verifyCommand() *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check a key through kube-apiserver's ApiKeyReview API, as a gateway would",
		Long: `Check an API key the way gateways do, through the aggregated ApiKeyReview
API (access.apikey-operator.io/v1alpha1): is it valid, for these
permissions, from this address? Like a gateway, it says whose keys it
accepts: those of the current namespace (-n, or the kubeconfig's), and with
--audience only keys made for one of those audiences; a key of another
namespace is refused (WrongNamespace). Prints the verdict and, when the
token belongs to an accepted key, which key. Exits 1 when the key is
refused.

The key is never taken from the command line, where shell history and the
process list would keep it: pass it on standard input with --key-from-stdin,
or type it at the prompt (not echoed). You need create on
apikeyreviews.access.apikey-operator.io.`,
		Example: `  kubectl apikey token billing | kubectl apikey verify --key-from-stdin --permission invoices:read --ip 10.1.2.3
  kubectl apikey token billing | kubectl apikey verify -n team-a --audience billing --key-from-stdin
  kubectl apikey verify            # prompts for the key`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.verify(cmd, o)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.fromStdin, "key-from-stdin", false, "Read the key from the first line of standard input.")
	fs.StringArrayVar(&o.permissions, "permission", nil, "Permission the request needs; repeat for more (all must be granted).")
	fs.StringVar(&o.ip, "ip", "", "Client address to check against the key's allowed IPs.")
	fs.StringArrayVar(&o.audiences, "audience", nil, "Audience the gateway names; repeat for more. A key with spec.audiences verifies only where one of them is named.")
	return cmd
}

func (r *root) verify(cmd *cobra.Command, o *verifyOptions) error {
	key, err := r.readKey(o.fromStdin)
	if err != nil {
		return err
	}
	ns, err := r.namespace()
	if err != nil {
		return err
	}
	c, err := r.newClient()
	if err != nil {
		return err
	}
	review := &accessv1.ApiKeyReview{Spec: accessv1.ApiKeyReviewSpec{
		Key: key, IP: o.ip, Permissions: o.permissions, Namespaces: []string{ns}, Audiences: o.audiences,
	}}
	if err := c.Create(cmd.Context(), review); err != nil {
		// The server never echoes the key; a client-side error could, in
		// principle, quote the request, so the key is dropped first.
		review.Spec.Key = ""
		return fmt.Errorf("ApiKeyReview failed (is the operator's API server registered? `kubectl get apiservice v1alpha1.access.apikey-operator.io`): %s", scrub(err.Error(), key))
	}
	printVerdict(r.streams.Out, &review.Status, time.Now())
	if !review.Status.Valid {
		return ExitError{Code: 1}
	}
	return nil
}

// readKey takes the key from standard input or a prompt without echo.
func (r *root) readKey(fromStdin bool) (string, error) {
	if !fromStdin {
		f, ok := r.streams.In.(interface{ Fd() uintptr })
		if !ok || !r.streams.IsTerminal(r.streams.In) {
			return "", errors.New("no key: pass it on standard input with --key-from-stdin (never on the command line), or run in a terminal to be prompted")
		}
		fmt.Fprint(r.streams.ErrOut, "API key (not echoed): ")
		raw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(r.streams.ErrOut)
		if err != nil {
			return "", fmt.Errorf("read the key from the terminal: %w", err)
		}
		return checkKey(string(raw))
	}
	line, err := bufio.NewReaderSize(io.LimitReader(r.streams.In, maxKeyLine), maxKeyLine).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the key from standard input: %w", err)
	}
	return checkKey(line)
}

func checkKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("the key is empty: pipe it in, for example `kubectl apikey token NAME | kubectl apikey verify --key-from-stdin`")
	}
	return s, nil
}

// scrub removes the key from a message, should anything quote it.
func scrub(msg, key string) string { return strings.ReplaceAll(msg, key, "<redacted>") }

func printVerdict(out io.Writer, s *accessv1.ApiKeyReviewStatus, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	defer w.Flush()
	verdict := "refused"
	if s.Valid {
		verdict = "valid"
	}
	fmt.Fprintf(w, "Verdict:\t%s (%s)\n", verdict, s.Reason)
	k := s.ApiKey
	if k == nil {
		return
	}
	fmt.Fprintf(w, "Key:\t%s/%s (prefix %s)\n", k.Namespace, k.Name, k.KeyPrefix)
	fmt.Fprintf(w, "Role:\t%s\n", orNone(k.Role))
	fmt.Fprintf(w, "Permissions:\t%s\n", orNone(strings.Join(k.Permissions, ", ")))
	if k.ExpiresAt != nil {
		fmt.Fprintf(w, "Expires:\t%s\n", when(k.ExpiresAt.Time, now))
	}
	if u := k.Usage; u != nil {
		fmt.Fprintf(w, "Usage:\t%d allowed, %d refused in the last 24h; %d allowed, %d refused in total\n",
			u.AllowedLast24h, u.RefusedLast24h, u.Allowed, u.Refused)
		if u.LastUsedAt != nil {
			fmt.Fprintf(w, "Last used:\t%s\n", when(u.LastUsedAt.Time, now))
		}
	}
}
