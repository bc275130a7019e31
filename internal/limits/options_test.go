package limits

import (
	"strings"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		set  func(*Options)
		want string // "" for valid
	}{
		{"defaults, no Redis", func(*Options) {}, ""},
		{"redis", func(o *Options) { o.RedisURL = "redis://redis:6379/0" }, ""},
		{"rediss with CA", func(o *Options) { o.RedisURL = "rediss://redis:6380/0"; o.RedisTLSServerName = "redis.example" }, ""},
		{"not a URL", func(o *Options) { o.RedisURL = "redis:6379" }, "must look like redis://"},
		{"http", func(o *Options) { o.RedisURL = "http://s3cr3t@redis:6379" }, "must look like redis://"},
		{"TLS on plain", func(o *Options) { o.RedisURL = "redis://r:6379"; o.RedisTLSServerName = "x" }, "need a rediss:// URL"},
		{"cert without key", func(o *Options) { o.RedisURL = "rediss://r:6379"; o.RedisTLSCertFile = "c.pem" }, "go together"},
		{"password file missing", func(o *Options) { o.RedisURL = "redis://r:6379"; o.RedisPasswordFile = "/nonexistent/pw" }, "--limits-redis-password-file"},
		{"password without URL", func(o *Options) { o.RedisPasswordFile = "/pw" }, "need --limits-redis-url"},
		{"timeout", func(o *Options) { o.RedisTimeout = time.Minute }, "between 1ms and 5s"},
		{"bad database", func(o *Options) { o.RedisURL = "redis://user:s3cr3t@r:6379/x" }, "not a Redis URL"},
	}
	for _, c := range cases {
		o := NewOptions()
		c.set(o)
		err := o.Validate()
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: error %q quotes the password", c.name, err)
		}
	}
}
