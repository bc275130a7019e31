package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A terminal on standard output makes `token` refuse before it reads
// anything, unless --reveal is given.
func TestTokenRefusesATerminal(t *testing.T) {
	var out, errOut bytes.Buffer
	streams := Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, IsTerminal: func(any) bool { return true }}
	contacted := false
	fake := func() (client.Client, error) {
		contacted = true
		return nil, errFake
	}
	cmd := newCommand(streams, fake)
	cmd.SetArgs([]string{"token", "billing"})
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "refusing to print a token to a terminal") || !strings.Contains(err.Error(), "--reveal") {
		t.Fatalf("want a refusal that names --reveal, got %v", err)
	}
	if contacted || out.Len() > 0 {
		t.Fatalf("the refusal must come before reading the Secret: contacted=%t, stdout=%q", contacted, out.String())
	}

	// With --reveal it goes on to read the Secret.
	cmd = newCommand(streams, fake)
	cmd.SetArgs([]string{"token", "billing", "--reveal"})
	if err := cmd.Execute(); err != errFake || !contacted {
		t.Fatalf("--reveal: want the client to be asked for, got err=%v contacted=%t", err, contacted)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1.5d": 36 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute} {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "soon", "-3h", "7 d"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q): want an error", bad)
		}
	}
}

var errFake = fakeErr("no cluster in this test")

type fakeErr string

func (e fakeErr) Error() string { return string(e) }
