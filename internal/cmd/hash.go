package cmd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/apikey-operator/apikey-operator/internal/token"
)

// maxTokenLine bounds what hash reads from stdin: a token is at most
// token.MaxLen bytes, plus a line ending.
const maxTokenLine = token.MaxLen + 2

func newHashCommand() *cobra.Command {
	var mintTo, prefix string
	cmd := &cobra.Command{
		Use:   "hash",
		Short: "Print the sha256: hash of a token read from stdin, for spec.tokenHash",
		Long: `Print the hash of a token, as spec.tokenHash of a hash-only ApiKey takes it:
sha256: followed by 64 lower-case hex digits. The token is read from standard
input (one line; a trailing newline is ignored), so it never appears in the
shell's history or the process list. Nothing but the hash is printed.

A token of the operator's shape (<prefix>_<43 base62>_<6 checksum>) must carry
a good checksum; any other must be 32 to 1024 printable characters without
spaces, as the verifier requires.

With --mint FILE a new token is minted into FILE (created with mode 0600; an
existing file is never overwritten) and its hash is printed: make a key on a
workstation without the plaintext ever reaching the cluster.`,
		Example: `  apikey-operator hash --mint billing.token          # new token in billing.token, hash on stdout
  apikey-operator hash < billing.token                  # the hash of an existing token
  vault kv get -field=api-key secret/billing | apikey-operator hash`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mintTo != "" {
				return mintInto(cmd.OutOrStdout(), mintTo, prefix)
			}
			return hashStdin(cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&mintTo, "mint", "", "Mint a new token into this file (mode 0600, never overwritten) and print its hash.")
	cmd.Flags().StringVar(&prefix, "prefix", "ak", "Prefix of a token minted with --mint (the operator's --token-prefix, so secret scanners know it).")
	return cmd
}

// hashStdin prints the hash of the one token on in.
func hashStdin(in io.Reader, out io.Writer) error {
	line, err := bufio.NewReaderSize(io.LimitReader(in, maxTokenLine+1), maxTokenLine+1).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the token from stdin: %w", err)
	}
	tok := strings.TrimRight(line, "\r\n")
	if tok == "" {
		return errors.New("no token on stdin: pipe the token in (apikey-operator hash < token-file), or mint one with --mint FILE")
	}
	// token errors never carry the token (internal/token's tests say so).
	if err := token.Validate(tok); err != nil {
		return fmt.Errorf("the token on stdin is not usable: %w", err)
	}
	_, err = fmt.Fprintln(out, token.Hash(tok))
	return err
}

// mintInto mints a token into a new file and prints its hash.
func mintInto(out io.Writer, path, prefix string) error {
	tok, err := token.Mint(prefix)
	if err != nil {
		return fmt.Errorf("--prefix: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--mint: %w (choose a file that does not exist yet)", err)
	}
	if _, err := fmt.Fprintln(f, tok); err != nil {
		f.Close()
		return fmt.Errorf("--mint: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--mint: write %s: %w", path, err)
	}
	_, err = fmt.Fprintln(out, token.Hash(tok))
	return err
}
