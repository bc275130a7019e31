package keystore

import (
	"context"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

func roleView(r *keysv1.ApiKeyRole) *Role {
	return &Role{
		Namespace: r.Namespace, Name: r.Name, ID: IDOf(r.UID), Description: r.Spec.Description,
		Permissions: fromPermissions(r.Spec.Permissions), CreatedAt: r.CreationTimestamp.UTC(),
	}
}

func fromPermissions(ps []keysv1.Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

// roleIDs maps the namespace's role names to their IDs.
func (s *Kube) roleIDs(ctx context.Context, ns string) map[string]string {
	list := &keysv1.ApiKeyRoleList{}
	ids := map[string]string{}
	if err := s.Cache.List(ctx, list, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err == nil {
		for i := range list.Items {
			ids[list.Items[i].Name] = IDOf(list.Items[i].UID)
		}
	}
	return ids
}

func (s *Kube) view(ctx context.Context, key *keysv1.ApiKey) *Key {
	return viewOf(key, s.roleIDs(ctx, key.Namespace))
}

// viewOf turns an ApiKey into what dialects may show: no hash, no token.
func viewOf(key *keysv1.ApiKey, roleIDs map[string]string) *Key {
	v := &Key{
		Namespace: key.Namespace, ObjectName: key.Name, ID: IDOf(key.UID), Name: key.DisplayName(),
		Description: key.Spec.Description, Permissions: fromPermissions(key.Spec.Permissions),
		Enabled: key.IsEnabled(), CreatedAt: key.CreationTimestamp.UTC(),
		CreatedBy: key.Annotations[CreatedByAnnotation], UpdatedBy: key.Annotations[ModifiedByAnnotation],
		KeyPrefix: key.Status.KeyPrefix, State: StatePending, StateChangedAt: key.CreationTimestamp.UTC(),
	}
	for _, ip := range key.Spec.AllowedIPs {
		v.AllowedIPs = append(v.AllowedIPs, string(ip))
	}
	if key.Spec.RoleRef != nil {
		v.Role, v.RoleID = key.Spec.RoleRef.Name, roleIDs[key.Spec.RoleRef.Name]
	}
	if t, ok := key.Expiry(); ok {
		v.ExpiresAt = t.UTC()
	}
	v.UpdatedAt = v.CreatedAt
	if t, err := time.Parse(time.RFC3339, key.Annotations[ModifiedAtAnnotation]); err == nil {
		v.UpdatedAt = t.UTC()
	}
	for _, c := range key.Status.Conditions {
		if c.Type == keysv1.ConditionReady {
			v.State, v.StateMessage, v.StateChangedAt = c.Reason, c.Message, c.LastTransitionTime.UTC()
		}
	}
	for k, val := range key.Annotations {
		if name, ok := strings.CutPrefix(k, AttributePrefix); ok {
			if v.Attributes == nil {
				v.Attributes = map[string]string{}
			}
			v.Attributes[name] = val
		}
	}
	return v
}
