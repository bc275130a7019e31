package serving

import (
	"fmt"
	"net/http"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// Checks hold the /healthz and /readyz checks the process registers, and
// serve them as controller-runtime's probe server does (the same paths,
// subpaths per check, the same answers).
type Checks struct {
	mu      sync.Mutex
	healthz map[string]healthz.Checker
	readyz  map[string]healthz.Checker
}

// AddHealthz adds a liveness check.
func (c *Checks) AddHealthz(name string, check healthz.Checker) error {
	return c.add(&c.healthz, name, check)
}

// AddReadyz adds a readiness check.
func (c *Checks) AddReadyz(name string, check healthz.Checker) error {
	return c.add(&c.readyz, name, check)
}

func (c *Checks) add(m *map[string]healthz.Checker, name string, check healthz.Checker) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *m == nil {
		*m = map[string]healthz.Checker{}
	}
	if _, dup := (*m)[name]; dup {
		return fmt.Errorf("check %q added twice", name)
	}
	(*m)[name] = check
	return nil
}

// Handler serves /healthz and /readyz. Checks are added before the
// process starts serving, so the maps are read without the lock after.
func (c *Checks) Handler() http.Handler {
	c.mu.Lock()
	defer c.mu.Unlock()
	mux := http.NewServeMux()
	for path, checks := range map[string]map[string]healthz.Checker{"/healthz": c.healthz, "/readyz": c.readyz} {
		if checks == nil {
			checks = map[string]healthz.Checker{}
		}
		h := http.StripPrefix(path, &healthz.Handler{Checks: checks})
		mux.Handle(path, h)
		mux.Handle(path+"/", h)
	}
	return mux
}
