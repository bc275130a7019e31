// Command localrun is `make run`: it starts a local control plane from
// bin/, runs the operator against it, applies config/samples/, waits until
// the sample keys are Ready, and prints what to do next. Ctrl-C stops
// everything and leaves no process or port behind.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/apikey-operator/apikey-operator/internal/devenv"
)

func main() {
	var o devenv.RunOptions
	flag.StringVar(&o.BinDir, "bin", "bin", "Directory with apikey-operator, kube-apiserver, etcd and kubectl.")
	flag.StringVar(&o.ConfigDir, "config", "config", "The project's config/ directory (CRDs and samples).")
	flag.StringVar(&o.Namespace, "namespace", "default", "Namespace the samples are applied to.")
	flag.Parse()
	o.BinDir, _ = filepath.Abs(o.BinDir)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := devenv.Run(ctx, os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "make run:", err)
		os.Exit(1)
	}
}
