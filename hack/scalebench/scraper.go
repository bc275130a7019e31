package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// newScraper reads the operator's metrics as a cluster's Prometheus does
// with the shipped manifests: over HTTPS (the processes run with the
// default --metrics-secure), with the token of a ServiceAccount bound to
// config/rbac's metrics-reader ClusterRole. The processes sign their own
// certificates: verification is skipped, as the ServiceMonitor does.
// Scraping costs one TokenReview and one SubjectAccessReview per process
// and minute at most (the filter caches them); writeCounts leaves both
// out, since neither stores anything.
func newScraper(ctx context.Context, c client.Client, configDir string) (*http.Client, error) {
	raw, err := os.ReadFile(filepath.Join(configDir, "rbac", "metrics_reader_role.yaml"))
	if err != nil {
		return nil, err
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(raw, role); err != nil {
		return nil, fmt.Errorf("metrics_reader_role.yaml: %w", err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "scalebench-scraper"}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "scalebench-scraper"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: sa.Namespace, Name: sa.Name}}}
	for _, o := range []client.Object{role, sa, binding} {
		if err := c.Create(ctx, o); err != nil {
			return nil, fmt.Errorf("create %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
	tr := &authenticationv1.TokenRequest{}
	if err := c.SubResource("token").Create(ctx, sa, tr); err != nil {
		return nil, fmt.Errorf("token of the scraper's ServiceAccount: %w", err)
	}
	return &http.Client{Transport: &bearer{token: tr.Status.Token, next: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed, as above
	}}}, nil
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// metricsURL is the process's metrics endpoint.
func (p *operatorProc) metricsURL() string { return "https://" + p.metrics + "/metrics" }
