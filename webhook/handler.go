package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// These adapters play the part of controller-runtime's WithDefaulter and
// WithValidator, with one difference that matters here: an object the
// webhook cannot read is denied with a message that says which object
// and why, instead of a bare decoder error.

type defaulter[T runtime.Object] interface {
	Default(ctx context.Context, obj T) error
}

type validator[T runtime.Object] interface {
	ValidateCreate(ctx context.Context, obj T) (admission.Warnings, error)
	ValidateUpdate(ctx context.Context, oldObj, newObj T) (admission.Warnings, error)
	ValidateDelete(ctx context.Context, obj T) (admission.Warnings, error)
}

type defaulting[T runtime.Object] struct {
	decoder admission.Decoder
	newObj  func() T
	kind    string
	impl    defaulter[T]
}

func (h defaulting[T]) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	obj := h.newObj()
	if resp := decode(h.decoder, req.Object, obj, h.kind, "object"); resp != nil {
		return *resp
	}
	if err := h.impl.Default(admission.NewContextWithRequest(ctx, req), obj); err != nil {
		return denial(err)
	}
	defaulted, err := json.Marshal(obj)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encode the defaulted %s: %w", h.kind, err))
	}
	return onlyAdditions(admission.PatchResponseFromRaw(req.Object.Raw, defaulted))
}

// onlyAdditions drops the "remove" operations a typed round trip produces
// for fields the Go type does not know or leaves out when empty: defaulting
// adds values, it never takes any away.
func onlyAdditions(resp admission.Response) admission.Response {
	kept := resp.Patches[:0]
	for _, p := range resp.Patches {
		if p.Operation != "remove" {
			kept = append(kept, p)
		}
	}
	resp.Patches = kept
	if len(kept) == 0 {
		resp.Patches, resp.PatchType = nil, nil
	}
	return resp
}

type validating[T runtime.Object] struct {
	decoder admission.Decoder
	newObj  func() T
	kind    string
	impl    validator[T]
}

func (h validating[T]) Handle(ctx context.Context, req admission.Request) admission.Response {
	ctx = admission.NewContextWithRequest(ctx, req)
	obj := h.newObj()
	var warnings admission.Warnings
	var err error
	switch req.Operation {
	case admissionv1.Create:
		if resp := decode(h.decoder, req.Object, obj, h.kind, "object"); resp != nil {
			return *resp
		}
		warnings, err = h.impl.ValidateCreate(ctx, obj)
	case admissionv1.Update:
		old := h.newObj()
		if resp := decode(h.decoder, req.Object, obj, h.kind, "object"); resp != nil {
			return *resp
		}
		if resp := decode(h.decoder, req.OldObject, old, h.kind, "oldObject"); resp != nil {
			return *resp
		}
		warnings, err = h.impl.ValidateUpdate(ctx, old, obj)
	case admissionv1.Delete:
		if resp := decode(h.decoder, req.OldObject, obj, h.kind, "oldObject"); resp != nil {
			return *resp
		}
		warnings, err = h.impl.ValidateDelete(ctx, obj)
	default:
		return admission.Denied(fmt.Sprintf("this webhook checks CREATE, UPDATE and DELETE of %s, not %q; fix the webhook configuration's operations", h.kind, req.Operation))
	}
	if err != nil {
		return denial(err).WithWarnings(warnings...)
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// decode reads one object of the request; on failure it returns the
// denial to send.
func decode(d admission.Decoder, raw runtime.RawExtension, into runtime.Object, kind, field string) *admission.Response {
	if err := d.DecodeRaw(raw, into); err != nil {
		resp := admission.Errored(http.StatusBadRequest, fmt.Errorf(
			"cannot read the %s in request.%s of the AdmissionReview: %w", kind, field, err))
		return &resp
	}
	return nil
}

// denial keeps the code and details of an API status error (Invalid,
// Forbidden, InternalError) so clients see the usual Kubernetes error.
func denial(err error) admission.Response {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &s}}
	}
	return admission.Denied(err.Error())
}
