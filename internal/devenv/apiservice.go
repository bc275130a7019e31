package devenv

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RegisterAPIService makes kube-apiserver serve access.apikey-operator.io
// from the API server on localhost:port. The aggregator cannot reach
// 127.0.0.1 through Endpoints (validation refuses it) nor a ClusterIP
// (nothing routes it without kube-proxy), but it dials an ExternalName
// Service's name, and verifies the certificate for <service>.<ns>.svc
// against the APIService's caBundle.
func (e *Env) RegisterAPIService(ctx context.Context, port int) error {
	c, err := client.New(e.Config, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: APIServerNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := createOrReplace(ctx, c, externalNameService(port)); err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	if err := createOrReplace(ctx, c, apiService(port, e.Certs.ServingCAPEM)); err != nil {
		return fmt.Errorf("create APIService: %w", err)
	}
	return nil
}

func externalNameService(port int) *unstructured.Unstructured {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: APIServerNamespace, Name: APIServerService},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "localhost",
			Ports:        []corev1.ServicePort{{Name: "https", Port: int32(port), TargetPort: intstr.FromInt(port)}},
		},
	}
	raw, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(svc)
	u := &unstructured.Unstructured{Object: raw}
	u.SetAPIVersion("v1")
	u.SetKind("Service")
	return u
}

func apiService(port int, caBundle []byte) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": "v1alpha1.access.apikey-operator.io"},
		"spec": map[string]any{
			"group":                "access.apikey-operator.io",
			"version":              "v1alpha1",
			"groupPriorityMinimum": int64(1000),
			"versionPriority":      int64(15),
			"caBundle":             base64.StdEncoding.EncodeToString(caBundle),
			"service":              map[string]any{"name": APIServerService, "namespace": APIServerNamespace, "port": int64(port)},
		},
	}}
	return u
}

func createOrReplace(ctx context.Context, c client.Client, u *unstructured.Unstructured) error {
	err := c.Create(ctx, u)
	if apierrors.IsAlreadyExists(err) {
		existing := &unstructured.Unstructured{}
		existing.SetGroupVersionKind(u.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(u), existing); err != nil {
			return err
		}
		u.SetResourceVersion(existing.GetResourceVersion())
		return c.Update(ctx, u)
	}
	return err
}

// WaitAPIServiceAvailable waits until the aggregator reports the
// APIService Available.
func (e *Env) WaitAPIServiceAvailable(ctx context.Context, timeout time.Duration) error {
	c, err := client.New(e.Config, client.Options{Scheme: runtime.NewScheme()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("apiregistration.k8s.io/v1")
		u.SetKind("APIService")
		if err := c.Get(ctx, client.ObjectKey{Name: "v1alpha1.access.apikey-operator.io"}, u); err == nil {
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, cond := range conds {
				m, _ := cond.(map[string]any)
				if m["type"] == "Available" {
					if m["status"] == "True" {
						return nil
					}
					last = fmt.Sprint(m["reason"], ": ", m["message"])
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("APIService not Available within %s: %s", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
