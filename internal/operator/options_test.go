package operator

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
)

// processes are the commands of the binary and what each runs.
var processes = map[string]Components{"controller": ControllerProcess, "apiserver": APIServerProcess, "all": AllInOne}

// parse binds the flags of c as the command does and parses args.
func parse(c Components, args ...string) (*Options, error) {
	o := NewOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fss := o.Flags(c)
	for _, name := range fss.Order {
		fs.AddFlagSet(fss.FlagSets[name])
	}
	return o, fs.Parse(args)
}

// The settings every component must agree on are one flag each, in one
// field, whatever the process: the old `all` copied them by hand from the
// controller's options into the API server's.
func TestSharedKeyFlagsAreOneField(t *testing.T) {
	for name, c := range processes {
		o, err := parse(c, "--default-key-lifetime=48h", "--token-prefix=acme", "--watch-namespaces=a")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if o.Keys.DefaultLifetime.Hours() != 48 || o.Keys.TokenPrefix != "acme" || len(o.Keys.WatchNamespaces) != 1 {
			t.Errorf("%s: keys options %+v", name, o.Keys)
		}
	}
}

// Validate names every bad flag at once, so one run of the command shows
// all there is to fix.
func TestValidateReportsEveryBadFlag(t *testing.T) {
	o, err := parse(AllInOne, "--token-prefix=BAD", "--default-key-lifetime=-1h", "--max-concurrent-reconciles=0",
		"--max-key-lifetime=-1h", "--webhook-port=0", "--webhook-cert-hosts=127.0.0.1",
		"--verify-failure-burst=0", "--watch-namespaces=Bad", "--secure-port=-1", "--event-burst=0")
	if err != nil {
		t.Fatal(err)
	}
	err = o.Validate(AllInOne)
	if err == nil {
		t.Fatal("Validate accepted every bad flag")
	}
	for _, flag := range []string{"--token-prefix", "--default-key-lifetime", "--max-concurrent-reconciles",
		"--max-key-lifetime", "--webhook-port", "--verify-failure-burst", "--watch-namespaces", "--secure-port", "--event-burst"} {
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("the error does not name %s:\n%v", flag, err)
		}
	}
	if err := NewOptions().Validate(APIServerProcess); err != nil {
		t.Errorf("defaults of the API server: %v", err)
	}
}

// --help prints the flags in named sections, and only the sections of
// the process's components.
func TestHelpSections(t *testing.T) {
	for name, c := range processes {
		var buf bytes.Buffer
		cliflag.PrintSections(&buf, NewOptions().Flags(c), 100)
		help := buf.String()
		want := map[string]bool{
			"Kubernetes connection flags:": true, "Keys flags:": true, "Logging flags:": true,
			"Controller flags:": c.Controller, "Admission webhook flags:": c.Webhook,
			"API server (REST dialects": c.APIServer, "Verify endpoints flags:": c.Verify,
		}
		for section, present := range want {
			if strings.Contains(help, section) != present {
				t.Errorf("%s --help: section %q present=%v, want %v", name, section, !present, present)
			}
		}
	}
}
