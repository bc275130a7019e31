package memlimit

import (
	"runtime/debug"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSoft(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want int64
		err  bool
	}{
		{env: map[string]string{}, want: 0},
		{env: map[string]string{EnvVar: "268435456"}, want: 214748364},     // 256Mi → 204.8Mi
		{env: map[string]string{EnvVar: " 1073741824\n"}, want: 858993459}, // 1Gi
		{env: map[string]string{EnvVar: "268435456", "GOMEMLIMIT": "100MiB"}, want: 0},
		{env: map[string]string{EnvVar: "256Mi"}, err: true}, // a quantity, not bytes: a divisor was set
		{env: map[string]string{EnvVar: "0"}, err: true},
		{env: map[string]string{EnvVar: "-5"}, err: true},
		{env: map[string]string{EnvVar: "99999999999999999999"}, err: true},
	} {
		got, why, err := Soft(env(c.env))
		if (err != nil) != c.err || got != c.want {
			t.Errorf("Soft(%v) = %d, %q, %v; want %d, error %v", c.env, got, why, err, c.want, c.err)
		}
	}
}

func TestApplySetsTheRuntimeLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	got, _, err := Apply(env(map[string]string{EnvVar: "1073741824"}))
	if err != nil || got != 858993459 {
		t.Fatalf("Apply = %d, %v", got, err)
	}
	if now := debug.SetMemoryLimit(-1); now != got {
		t.Errorf("runtime limit %d; want %d", now, got)
	}
}

func TestGCDefaultsUnlessGOGCIsSet(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	if got, _ := GC(env(map[string]string{})); got != GCPercent {
		t.Fatalf("GC = %d; want %d", got, GCPercent)
	}
	if now := debug.SetGCPercent(100); now != GCPercent {
		t.Errorf("runtime GC percent %d; want %d", now, GCPercent)
	}
	// GOGC set: the runtime read it at start, and it stays.
	if got, why := GC(env(map[string]string{"GOGC": "200"})); got != 0 || why != "GOGC=200 set" {
		t.Errorf("GC with GOGC=200 = %d, %q; want 0, GOGC=200 set", got, why)
	}
	if now := debug.SetGCPercent(100); now != 100 {
		t.Errorf("runtime GC percent %d after GOGC=200; want it left at 100", now)
	}
}
