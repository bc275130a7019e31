package devenv

import (
	"context"
	"fmt"
	"net"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/apikey-operator/apikey-operator/internal/operator"
)

// OperatorOptions are the settings that run the operator in-process
// against this environment, as `apikey-operator all --disable-webhooks`
// would: the controller without metrics, probes or webhooks, and the API
// server on 127.0.0.1:securePort with the certificate the aggregator
// trusts and delegation through the admin kubeconfig, and verify on
// 127.0.0.1:verifyPort. Callers adjust the result (watched namespaces,
// cache TTLs) before building the manager.
func (e *Env) OperatorOptions(securePort, verifyPort int) (*operator.Options, *operator.APIServerOptions) {
	opts := operator.NewOptions()
	opts.MetricsBindAddress, opts.HealthProbeBindAddress = "0", "0"
	opts.Webhook.Disable = true

	api := operator.NewAPIServerOptions()
	serving := api.Server.SecureServing
	serving.BindAddress = net.ParseIP("127.0.0.1")
	serving.BindPort = securePort
	serving.ServerCert.CertKey.CertFile, serving.ServerCert.CertKey.KeyFile = e.Certs.ServingCert, e.Certs.ServingKey
	api.Server.Authentication.RemoteKubeConfigFile = e.Kubeconfig
	api.Server.Authorization.RemoteKubeConfigFile = e.Kubeconfig
	api.Verify.BindAddress = fmt.Sprintf("127.0.0.1:%d", verifyPort)
	// Suites run side by side: none takes the fixed gRPC port.
	api.ExtAuthz.BindAddress = "0"
	return opts, api
}

// BuildOperator builds the manager that `apikey-operator all` runs: the
// controller and the API server with verify, sharing one cache. The
// caller starts it.
func BuildOperator(ctx context.Context, cfg *rest.Config, opts *operator.Options, api *operator.APIServerOptions) (ctrl.Manager, error) {
	if err := api.Validate(); err != nil {
		return nil, err
	}
	mgr, err := operator.NewManager(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	return mgr, operator.AddAPIServer(ctx, mgr, api)
}
