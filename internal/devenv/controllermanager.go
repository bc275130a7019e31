package devenv

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/apikey-operator/apikey-operator/internal/devenv/proc"
)

// controllerManagerControllers are the built-in controllers the operator
// relies on in a cluster: the garbage collector removes a deleted key's
// Secret through its owner reference (kubectl delete, GitOps prune), and
// the namespace controller empties a deleted namespace. Without them a
// local run would keep every deleted key's Secret.
var controllerManagerControllers = "garbage-collector-controller,namespace-controller"

// startControllerManager runs bin/kube-controller-manager against the
// control plane as its admin, serving nothing (--secure-port=0, so it
// takes no port another run could be using), with its log beside the
// kubeconfig.
func (e *Env) startControllerManager(binDir string) error {
	bin := filepath.Join(binDir, "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("kube-controller-manager is not in %s: run `make controlplane` to build it", binDir)
	}
	logPath := e.Kubeconfig + ".kube-controller-manager.log"
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	p, err := proc.Start(bin, []string{"--kubeconfig=" + e.Kubeconfig,
		"--controllers=" + controllerManagerControllers, "--leader-elect=false", "--secure-port=0"}, proc.Options{Out: log, DieWithParent: true})
	if err != nil {
		log.Close()
		return err
	}
	e.controllerManager, e.controllerManagerLog = p, log
	select {
	case <-p.Done():
		return fmt.Errorf("kube-controller-manager exited at start (%v); its log %s ends with:\n%s", p.Err(), logPath, tail(logPath, 15))
	case <-time.After(500 * time.Millisecond):
	}
	return nil
}

// stopControllerManager stops it before kube-apiserver goes away.
func (e *Env) stopControllerManager() error {
	if e.controllerManager == nil {
		return nil
	}
	defer e.controllerManagerLog.Close()
	return e.controllerManager.Stop(10 * time.Second)
}
