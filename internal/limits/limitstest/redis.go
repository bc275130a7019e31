// Package limitstest runs a real redis-server for tests and benchmarks:
// on a free loopback port, without persistence, stopped at the end.
// `make gateways` (hack/gateways-install.sh) installs Debian's
// redis-server package when it is missing.
package limitstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process; Stop and Start keep its port, so
// clients pointed at it find it again.
type Server struct {
	port int
	dir  string
	cmd  *exec.Cmd
}

// NewServer starts a redis-server on a free loopback port, its working
// directory dir (nothing is saved there).
func NewServer(dir string) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errors.New("redis-server is not installed: run `make gateways` (hack/gateways-install.sh installs Debian's redis-server)")
	}
	// A free port, found as devenv.FreePort does (devenv builds the
	// operator, which the verify tests using this package cannot import).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &Server{port: port, dir: dir}
	return s, s.Start()
}

// StartRedis starts a redis-server and stops it when tb ends; under
// -short it skips tb (make test-unit needs Go only).
func StartRedis(tb testing.TB) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts a redis-server: not under -short (make test-unit)")
	}
	s, err := NewServer(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Start starts the server (again) on its port and waits until it answers.
func (s *Server) Start() error {
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--loglevel", "warning", "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	c := s.Client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("redis-server on port %d did not answer within 10s: %w", s.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MustStart is Start for a test: it fails tb on an error.
func (s *Server) MustStart(tb testing.TB) {
	tb.Helper()
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
}

// Stop ends the server (a no-op when it is stopped).
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Client is a plain client of the server, for a test to look inside.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialerRetries: 1})
}
