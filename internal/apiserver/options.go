// Package apiserver is the operator's API server on k8s.io/apiserver: the
// aggregated API access.apikey-operator.io (ApiKeyReview) behind the
// standard delegated authentication and authorisation, and the REST
// dialects, which authenticate API keys and Kubernetes identities and
// answer in their own error shapes.
package apiserver

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	basecompatibility "k8s.io/component-base/compatibility"
	baseversion "k8s.io/component-base/version"
	netutils "k8s.io/utils/net"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/apiserver/openapi"
	apikeyaudit "github.com/apikey-operator/apikey-operator/internal/audit"
	"github.com/apikey-operator/apikey-operator/internal/connlimit"
	"github.com/apikey-operator/apikey-operator/internal/dialect"
)

// Scheme and Codecs of the aggregated API.
var (
	Scheme = runtime.NewScheme()
	Codecs = serializer.NewCodecFactory(Scheme)
)

func init() {
	if err := accessv1.AddToScheme(Scheme); err != nil {
		panic(err)
	}
	if err := addInternal(Scheme); err != nil {
		panic(err)
	}
	// The generic server encodes options and statuses as unversioned v1
	// types, as every aggregated server registers them (sample-apiserver).
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	Scheme.AddUnversionedTypes(schema.GroupVersion{Version: "v1"},
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
}

// Options are the standard flags of an aggregated API server: secure
// serving, delegated authentication and delegated authorisation.
type Options struct {
	SecureServing  *genericoptions.SecureServingOptionsWithLoopback
	Authentication *genericoptions.DelegatingAuthenticationOptions
	Authorization  *genericoptions.DelegatingAuthorizationOptions
	// Audit records requests, the REST dialects' writes included, as
	// audit.k8s.io/v1 Events (--audit-log-path, --audit-policy-file,
	// --audit-webhook-config-file); off until a policy file is given.
	Audit *genericoptions.AuditOptions
	// ServiceName and ServiceNamespace name the Service in front of the
	// server, for the self-signed certificate's names.
	ServiceName      string
	ServiceNamespace string
	// WriteTimeout bounds a REST dialect write (create, update, delete),
	// the calls to kube-apiserver it makes included: past it the caller
	// gets 503 with Retry-After in the dialect's shape rather than
	// waiting for an unreachable kube-apiserver (--rest-write-timeout).
	WriteTimeout time.Duration
	// Connections bounds the secure port's connections; the operator's
	// one connlimit.Options (nil: no limits).
	Connections *connlimit.Options
}

// Bounds of --rest-write-timeout. The upper one stays below the grace the
// controller gives the API server to write a new key's Secret
// (keysv1.TokenWriterGrace), so a create that gave up never races a
// token the controller mints.
const (
	DefaultWriteTimeout = 5 * time.Second
	minWriteTimeout     = 100 * time.Millisecond
	maxWriteTimeout     = 20 * time.Second
)

// NewOptions returns the defaults: port 8443, self-signed certificates in
// --cert-dir unless --tls-cert-file is given.
func NewOptions() *Options {
	o := &Options{
		SecureServing:    genericoptions.NewSecureServingOptions().WithLoopback(),
		Authentication:   genericoptions.NewDelegatingAuthenticationOptions(),
		Authorization:    genericoptions.NewDelegatingAuthorizationOptions(),
		Audit:            genericoptions.NewAuditOptions(),
		ServiceName:      "apikey-operator-apiserver",
		ServiceNamespace: "apikey-operator-system",
		WriteTimeout:     DefaultWriteTimeout,
	}
	o.SecureServing.BindPort = 8443
	o.SecureServing.ServerCert.CertDirectory = ""
	o.SecureServing.ServerCert.PairName = "apikey-operator-apiserver"
	// Probes and the OpenAPI documents of the dialects need no identity.
	o.Authorization.AlwaysAllowPaths = append([]string{"/healthz", "/readyz", "/livez"}, dialect.DocumentPaths()...)
	o.Authorization.AlwaysAllowGroups = []string{"system:masters"}
	return o
}

// AddFlags binds the options to a flag set.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.SecureServing.AddFlags(fs)
	o.Authentication.AddFlags(fs)
	o.Authorization.AddFlags(fs)
	o.Audit.AddFlags(fs)
	fs.StringVar(&o.ServiceName, "apiserver-service-name", o.ServiceName, "Service in front of the API server; the self-signed certificate is issued for <name>.<namespace>.svc.")
	fs.StringVar(&o.ServiceNamespace, "apiserver-service-namespace", o.ServiceNamespace, "Namespace of that Service.")
	fs.DurationVar(&o.WriteTimeout, "rest-write-timeout", o.WriteTimeout, fmt.Sprintf("Deadline of a REST dialect write (create, update, delete), its calls to kube-apiserver included (%s to %s). Past it the client gets 503 with Retry-After in the dialect's error shape; the write may still have happened, so look the key up by name or id before retrying (docs/rest-api.md). Reads are served from the cache and are not bound by it.", minWriteTimeout, maxWriteTimeout))
}

// Validate reports options that cannot work.
func (o *Options) Validate() error {
	var errs []error
	errs = append(errs, o.SecureServing.Validate()...)
	errs = append(errs, o.Authentication.Validate()...)
	errs = append(errs, o.Authorization.Validate()...)
	errs = append(errs, o.Audit.Validate()...)
	if o.WriteTimeout < minWriteTimeout || o.WriteTimeout > maxWriteTimeout {
		errs = append(errs, fmt.Errorf("--rest-write-timeout=%s: give a duration from %s to %s, such as %s", o.WriteTimeout, minWriteTimeout, maxWriteTimeout, DefaultWriteTimeout))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// limitConnections opens the secure port itself, as k8s.io/apiserver
// would, and bounds its connections (connlimit).
func (o *Options) limitConnections() error {
	s := o.SecureServing.SecureServingOptions
	if o.Connections == nil || s.Listener != nil || s.BindPort <= 0 {
		return nil
	}
	addr := net.JoinHostPort(s.BindAddress.String(), strconv.Itoa(s.BindPort))
	ln, _, err := genericoptions.CreateListener(s.BindNetwork, addr, net.ListenConfig{})
	if err != nil {
		return fmt.Errorf("listen on --bind-address/--secure-port %s: %w", addr, err)
	}
	s.Listener = o.Connections.Listen(connlimit.API, ln, nil)
	return nil
}

// Config builds the generic server's configuration from the options.
func (o *Options) Config() (*genericapiserver.Config, error) {
	if o.SecureServing.ServerCert.CertDirectory == "" && o.SecureServing.ServerCert.CertKey.CertFile == "" {
		// In memory: a self-signed certificate each start.
		o.SecureServing.ServerCert.GeneratedCert = nil
	}
	svc := fmt.Sprintf("%s.%s.svc", o.ServiceName, o.ServiceNamespace)
	if err := o.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", []string{svc, o.ServiceName + "." + o.ServiceNamespace, o.ServiceName}, []net.IP{netutils.ParseIPSloppy("127.0.0.1"), net.IPv6loopback}); err != nil {
		return nil, fmt.Errorf("create self-signed certificates: %w", err)
	}
	if err := o.limitConnections(); err != nil {
		return nil, err
	}
	c := genericapiserver.NewConfig(Codecs)
	c.EffectiveVersion = basecompatibility.NewEffectiveVersionFromString(baseversion.DefaultKubeBinaryVersion, "", "")
	namer := openapinamer.NewDefinitionNamer(Scheme)
	c.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitions, namer)
	c.OpenAPIConfig.Info.Title, c.OpenAPIConfig.Info.Version = "apikey-operator", "v1alpha1"
	c.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitions, namer)
	c.OpenAPIV3Config.Info.Title, c.OpenAPIV3Config.Info.Version = "apikey-operator", "v1alpha1"
	if err := o.SecureServing.ApplyTo(&c.SecureServing, &c.LoopbackClientConfig); err != nil {
		return nil, fmt.Errorf("secure serving: %w", err)
	}
	if err := o.Authentication.ApplyTo(&c.Authentication, c.SecureServing, c.OpenAPIConfig); err != nil {
		return nil, fmt.Errorf("delegated authentication (check --authentication-kubeconfig): %w", err)
	}
	if err := o.Authorization.ApplyTo(&c.Authorization); err != nil {
		return nil, fmt.Errorf("delegated authorization (check --authorization-kubeconfig): %w", err)
	}
	if err := o.Audit.ApplyTo(c); err != nil {
		return nil, fmt.Errorf("audit (check --audit-policy-file, --audit-log-path and --audit-webhook-config-file): %w", err)
	}
	// Whatever level the policy asks for, no body goes into an event:
	// this server's bodies can hold tokens.
	c.AuditBackend = apikeyaudit.Scrub(c.AuditBackend)
	return c, nil
}
