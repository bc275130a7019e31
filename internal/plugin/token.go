package plugin

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func (r *root) tokenCommand() *cobra.Command {
	var reveal bool
	cmd := &cobra.Command{
		Use:   "token NAME",
		Short: "Print a key's token from its Secret (not to a terminal without --reveal)",
		Long: `Print the token of an ApiKey, read from its Secret, on standard output.

When standard output is a terminal the command refuses unless you pass
--reveal, so that a token does not end up on a screen, a screen share or a
terminal's scroll-back by accident. Pipe it instead. You need get on
secrets in the key's namespace.`,
		Example: `  kubectl apikey token billing | pbcopy
  curl -H "Authorization: Bearer $(kubectl apikey token billing)" https://api.example.com/invoices
  kubectl apikey token billing --reveal`,
		Args:              oneKey,
		ValidArgsFunction: r.completeKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !reveal && r.streams.IsTerminal(r.streams.Out) {
				return errors.New("refusing to print a token to a terminal: pipe it into the program that needs it (kubectl apikey token " + args[0] + " | ...), or pass --reveal to show it on screen")
			}
			c, key, err := r.keySession(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tok, err := readToken(cmd.Context(), c, key)
			if err != nil {
				return err
			}
			if err := writeToken(r.streams.Out, tok); err != nil {
				return fmt.Errorf("write the token: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&reveal, "reveal", false, "Print the token even when standard output is a terminal.")
	return cmd
}
