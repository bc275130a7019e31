package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/spf13/pflag"

	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/operator"
	"github.com/apikey-operator/apikey-operator/webhook"
)

var _ = Describe("Operator wiring", func() {
	parse := func(args ...string) *operator.Options {
		o := operator.NewOptions()
		fs := pflag.NewFlagSet("controller", pflag.ContinueOnError)
		fss := o.Flags(operator.ControllerProcess)
		for _, name := range fss.Order {
			fs.AddFlagSet(fss.FlagSets[name])
		}
		Expect(fs.Parse(args)).To(Succeed())
		return o
	}

	It("serves the four webhooks from the manager that the controller command builds", func() {
		port, err := devenv.FreePort()
		Expect(err).NotTo(HaveOccurred())
		o := parse("--webhook-port", fmt.Sprint(port), "--webhook-cert-hosts", "127.0.0.1",
			"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--max-key-lifetime", "2160h")
		Expect(o.Validate(operator.ControllerProcess)).To(Succeed())
		Expect(o.Webhook.MaxKeyLifetime.Hours()).To(Equal(2160.0))
		mgr, err := operator.Build(context.Background(), env.Config, o, operator.ControllerProcess)
		Expect(err).NotTo(HaveOccurred())
		mux := mgr.GetWebhookServer().WebhookMux()
		for _, path := range []string{webhook.MutateApiKeyPath, webhook.ValidateApiKeyPath, webhook.ValidateApiKeyRolePath, webhook.ValidateApiConsumerPath} {
			_, pattern := mux.Handler(httptest.NewRequest(http.MethodPost, path, nil))
			Expect(pattern).To(Equal(path))
		}
	})

	It("refuses webhook options that cannot work, saying how to fix them", func() {
		Expect(parse("--max-key-lifetime", "-1h").Validate(operator.ControllerProcess)).To(MatchError(ContainSubstring("--max-key-lifetime must be 0 (no limit) or positive")))
		Expect(parse("--webhook-port", "0").Validate(operator.ControllerProcess)).To(MatchError(ContainSubstring("--webhook-port must be between 1 and 65535")))
		Expect(parse("--webhook-cert-dir", GinkgoT().TempDir()).Validate(operator.ControllerProcess)).To(MatchError(ContainSubstring("must hold tls.crt and tls.key")))
		Expect(parse("--webhook-cert-dir", env.Webhook().CertDir).Validate(operator.ControllerProcess)).To(Succeed())
		Expect(parse("--disable-webhooks", "--webhook-port", "0").Validate(operator.ControllerProcess)).To(Succeed())
	})
})
