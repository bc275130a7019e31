package devenv

import (
	"fmt"
	"net"

	"github.com/apikey-operator/apikey-operator/internal/operator"
)

// OperatorOptions are the settings that run the operator in-process
// against this environment, as `apikey-operator all --disable-webhooks`
// would: no metrics, probes or webhooks, the API server on
// 127.0.0.1:securePort with the certificate the aggregator trusts and
// delegation through the admin kubeconfig, and verify on
// 127.0.0.1:verifyPort. Callers adjust the result (watched namespaces,
// cache TTLs) and hand it to operator.Build like every command does.
func (e *Env) OperatorOptions(securePort, verifyPort int) *operator.Options {
	o := operator.NewOptions()
	o.Serving.MetricsBindAddress, o.Serving.HealthProbeBindAddress = "0", "0"
	o.Webhook.Disable = true
	o.Kube.Kubeconfig = e.Kubeconfig

	serving := o.APIServer.SecureServing
	serving.BindAddress = net.ParseIP("127.0.0.1")
	serving.BindPort = securePort
	serving.ServerCert.CertKey.CertFile, serving.ServerCert.CertKey.KeyFile = e.Certs.ServingCert, e.Certs.ServingKey
	o.Verify.BindAddress = fmt.Sprintf("127.0.0.1:%d", verifyPort)
	// Suites run side by side: none takes the fixed gRPC port.
	o.ExtAuthz.BindAddress = "0"
	o.Complete()
	return o
}
