// Package proc starts and stops the child processes of the local
// environments: `make run`'s operator (internal/devenv), the node's
// components (internal/devenv/node), the benchmarks' operators
// (hack/scalebench) and the suites that run the real binary. Each child
// runs in its own process group, so a stop reaches it and whatever it
// started, and a Ctrl-C at the terminal reaches only the parent, which
// stops its children in order. Standard library only, so the node
// package stays light.
package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Options say how a process is started; the zero value is a child with
// this process's environment and its output discarded.
type Options struct {
	// Out receives stdout and stderr.
	Out io.Writer
	// Env is added to this process's environment.
	Env []string
	// DieWithParent has the kernel SIGKILL the child if this process dies
	// first (Pdeathsig): for a node's components, which must not outlive
	// an e2e run that crashed.
	DieWithParent bool
	// OnExit runs once the process has exited (closing its log file).
	OnExit func()
}

// Process is a running child process in its own process group.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs name with args.
func Start(name string, args []string, o Options) (*Process, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = o.Out, o.Out
	if len(o.Env) > 0 {
		cmd.Env = append(os.Environ(), o.Env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if o.DieWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(name), err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		if o.OnExit != nil {
			o.OnExit()
		}
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, once Done is closed.
func (p *Process) Err() error { return p.err }

// Exited tells whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// State is how the process exited; nil while it runs.
func (p *Process) State() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.cmd.ProcessState
}

// Pid is the process's ID (and its process group's).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM to the process group, and SIGKILL after grace. It
// returns an error only when the process had to be killed.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
		return errors.New("did not stop within the grace period; killed")
	}
}

// Kill sends SIGKILL to the process group, as a node failure or the OOM
// killer would, and waits until the process has exited.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
}
