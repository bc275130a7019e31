// Command kubectl-apikey is the `kubectl apikey` plugin: put it on PATH and
// kubectl finds it. The logic is in internal/plugin.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/apikey-operator/apikey-operator/internal/plugin"
)

func main() {
	err := plugin.NewCommand(plugin.StdStreams()).Execute()
	var exit plugin.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		os.Exit(exit.Code)
	default:
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
