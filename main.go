// Command apikey-operator manages API keys declaratively on Kubernetes.
package main

import (
	"os"

	"github.com/apikey-operator/apikey-operator/internal/cmd"
)

func main() {
	if err := cmd.New().Execute(); err != nil {
		os.Exit(1)
	}
}
