package limits

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"
)

// Options say where the shared counters live. With RedisURL empty,
// limits are per replica (Local).
type Options struct {
	// RedisURL is redis://host:port/db or rediss:// for TLS. A password
	// belongs in RedisPasswordFile, not here: the URL is a flag, and
	// flags show in the Pod's spec.
	RedisURL string
	// RedisPasswordFile holds the password (a mounted Secret); read on
	// every new connection, so a rotated Secret takes effect without a
	// restart.
	RedisPasswordFile string
	// RedisUsername is the ACL user; default "default".
	RedisUsername string
	// RedisTLSCAFile verifies the server's certificate (rediss:// only);
	// default the system roots.
	RedisTLSCAFile string
	// RedisTLSCertFile and RedisTLSKeyFile are a client certificate for
	// servers that require one; both or neither.
	RedisTLSCertFile string
	RedisTLSKeyFile  string
	// RedisTLSServerName overrides the name checked in the server's
	// certificate; default the URL's host.
	RedisTLSServerName string
	// RedisTimeout bounds every call to Redis, connecting included: a
	// verification never waits longer for its limit.
	RedisTimeout time.Duration
	// RedisLeases lets a replica take several requests of a busy limit
	// from Redis in one call (docs/limits.md, "Leases"); off, every
	// verification of a limited key is one call.
	RedisLeases bool
	// VerifyService is namespace/name of the Service in front of the
	// verify replicas: each replica counts its ready EndpointSlice
	// endpoints and enforces 1/n of every limit while limits are not
	// shared (no Redis, or Redis down). Empty: each replica enforces the
	// whole limit.
	VerifyService string
}

// NewOptions returns the defaults: no Redis, a 50ms timeout when set.
func NewOptions() *Options {
	return &Options{RedisTimeout: 50 * time.Millisecond, RedisLeases: true}
}

// AddFlags binds the options to a flag set.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.RedisURL, "limits-redis-url", o.RedisURL, "Redis (or Valkey) holding the cluster-wide rate-limit counters: redis://host:6379/0, or rediss:// for TLS. Unset: each verify replica enforces its own share of every limit (docs/limits.md). Put the password in --limits-redis-password-file, not in the URL.")
	fs.StringVar(&o.RedisPasswordFile, "limits-redis-password-file", o.RedisPasswordFile, "File holding the Redis password (a mounted Secret); read again on every new connection, so a rotated Secret needs no restart.")
	fs.StringVar(&o.RedisUsername, "limits-redis-username", o.RedisUsername, "Redis ACL user; default: the URL's user, or \"default\".")
	fs.StringVar(&o.RedisTLSCAFile, "limits-redis-tls-ca-file", o.RedisTLSCAFile, "PEM CA bundle that signs the Redis server's certificate (rediss:// only); default: the system roots.")
	fs.StringVar(&o.RedisTLSCertFile, "limits-redis-tls-cert-file", o.RedisTLSCertFile, "PEM client certificate for a Redis that requires one (rediss:// only); with --limits-redis-tls-key-file.")
	fs.StringVar(&o.RedisTLSKeyFile, "limits-redis-tls-key-file", o.RedisTLSKeyFile, "PEM private key of --limits-redis-tls-cert-file.")
	fs.StringVar(&o.RedisTLSServerName, "limits-redis-tls-server-name", o.RedisTLSServerName, "Name checked in the Redis server's certificate; default: the URL's host.")
	fs.StringVar(&o.VerifyService, "limits-verify-service", o.VerifyService, "namespace/name (or name, in the Pod's own namespace) of the Service in front of the verify replicas (the chart and config/default set it). Each replica counts the Service's ready endpoints (EndpointSlices; needs list and watch on endpointslices in that namespace) and, while limits are not shared through Redis, enforces its share of each limit: the limit divided by that count. Unset: each replica enforces the whole limit (exact with one replica, as in make run).")
	fs.BoolVar(&o.RedisLeases, "limits-redis-leases", o.RedisLeases, "Let a verify replica take up to a tenth of a busy key's burst (at most 256 requests) from Redis in one call and serve the next verifications from it for up to 100ms: a hot key costs a fraction of a round trip per verification, and the limit holds within a lease per replica (docs/limits.md). Limits with a burst under 20 never lease. false: one Redis call per verification.")
	fs.DurationVar(&o.RedisTimeout, "limits-redis-timeout", o.RedisTimeout, "Longest a verification waits for Redis (connecting included). Past it, the verify replica falls back to its own share of the limit and probes Redis every second until it answers.")
}

// Validate reports options that cannot work, saying how to fix them.
func (o *Options) Validate() error {
	var errs []error
	if o.RedisTimeout < time.Millisecond || o.RedisTimeout > 5*time.Second {
		errs = append(errs, fmt.Errorf("--limits-redis-timeout must be between 1ms and 5s (a verification waits that long for Redis at most), not %s", o.RedisTimeout))
	}
	if strings.Count(o.VerifyService, "/") > 1 || strings.HasPrefix(o.VerifyService, "/") || strings.HasSuffix(o.VerifyService, "/") {
		errs = append(errs, fmt.Errorf("--limits-verify-service must be namespace/name or name, not %q", o.VerifyService))
	}
	if o.RedisURL == "" {
		if o.tlsSet() || o.RedisPasswordFile != "" || o.RedisUsername != "" {
			errs = append(errs, errors.New("--limits-redis-password-file, --limits-redis-username and --limits-redis-tls-* need --limits-redis-url"))
		}
		return errors.Join(errs...)
	}
	if _, err := o.redisOptions(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (o *Options) tlsSet() bool {
	return o.RedisTLSCAFile != "" || o.RedisTLSCertFile != "" || o.RedisTLSKeyFile != "" || o.RedisTLSServerName != ""
}

// redisOptions turns the flags into the client's options. Its errors
// never quote the URL, which may hold a password.
func (o *Options) redisOptions() (*redis.Options, error) {
	u, err := url.Parse(o.RedisURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, errors.New("--limits-redis-url must look like redis://host:6379/0 or rediss://host:6380/0")
	}
	if u.Scheme == "redis" && o.tlsSet() {
		return nil, errors.New("--limits-redis-tls-* need a rediss:// URL")
	}
	if (o.RedisTLSCertFile == "") != (o.RedisTLSKeyFile == "") {
		return nil, errors.New("--limits-redis-tls-cert-file and --limits-redis-tls-key-file go together: set both or neither")
	}
	ro, err := redis.ParseURL(o.RedisURL)
	if err != nil {
		return nil, errors.New("--limits-redis-url: not a Redis URL (redis://host:6379/0); check the host, port, database number and query parameters")
	}
	if o.RedisUsername != "" {
		ro.Username = o.RedisUsername
	}
	if o.RedisPasswordFile != "" {
		if _, err := os.ReadFile(o.RedisPasswordFile); err != nil {
			return nil, fmt.Errorf("--limits-redis-password-file: %w", err)
		}
		user, file := ro.Username, o.RedisPasswordFile
		ro.CredentialsProvider = func() (string, string) {
			b, _ := os.ReadFile(file)
			return user, strings.TrimRight(string(b), "\r\n")
		}
	}
	if ro.TLSConfig != nil {
		if err := o.tlsConfig(ro.TLSConfig); err != nil {
			return nil, err
		}
	}
	// Every call is bounded by the timeout, connecting included; a failed
	// call is not retried (the fallback answers it), and the pool never
	// waits longer than a call may.
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout = o.RedisTimeout, o.RedisTimeout, o.RedisTimeout, o.RedisTimeout
	ro.ContextTimeoutEnabled = true
	ro.MaxRetries = -1
	ro.DialerRetries, ro.DialerRetryTimeout = 1, o.RedisTimeout
	return ro, nil
}

func (o *Options) tlsConfig(c *tls.Config) error {
	c.MinVersion = tls.VersionTLS12
	if o.RedisTLSServerName != "" {
		c.ServerName = o.RedisTLSServerName
	}
	if o.RedisTLSCAFile != "" {
		pem, err := os.ReadFile(o.RedisTLSCAFile)
		if err != nil {
			return fmt.Errorf("--limits-redis-tls-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--limits-redis-tls-ca-file %s holds no PEM certificate", o.RedisTLSCAFile)
		}
		c.RootCAs = pool
	}
	if o.RedisTLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.RedisTLSCertFile, o.RedisTLSKeyFile)
		if err != nil {
			return fmt.Errorf("--limits-redis-tls-cert-file/--limits-redis-tls-key-file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return nil
}
