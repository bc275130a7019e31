package verify

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

func TestUsagePatchOf(t *testing.T) {
	now := time.Date(2026, 11, 27, 16, 40, 0, 0, time.UTC)
	hour := func(h int) metav1.Time { return metav1.NewTime(time.Date(2026, 11, 27, h, 0, 0, 0, time.UTC)) }
	ago := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(-d)); return &t }
	since := metav1.NewTime(now.Add(-48 * time.Hour))
	for _, tc := range []struct {
		name      string
		status    keysv1.ApiKeyStatus
		d         delta
		wantUsage keysv1.KeyUsage
		wantLast  *metav1.Time
	}{{
		name:      "first write starts counting",
		d:         delta{last: now.UnixNano(), allowed: 5, refused: 1},
		wantUsage: keysv1.KeyUsage{Allowed: 5, Refused: 1, Since: &metav1.Time{Time: now}, Hourly: []keysv1.HourlyUsage{{Hour: hour(16), Allowed: 5, Refused: 1}}},
		wantLast:  &metav1.Time{Time: now},
	}, {
		name: "adds to the current hour, keeps a later lastUsedAt, drops hours older than a day",
		status: keysv1.ApiKeyStatus{LastUsedAt: &metav1.Time{Time: now.Add(time.Minute)}, Usage: &keysv1.KeyUsage{
			Allowed: 100, Refused: 10, Since: &since,
			Hourly: []keysv1.HourlyUsage{
				{Hour: metav1.NewTime(hour(16).Add(-30 * time.Hour)), Allowed: 50},
				{Hour: hour(9), Allowed: 30, Refused: 4},
				{Hour: hour(16), Allowed: 20, Refused: 6},
			},
		}},
		d: delta{last: now.UnixNano(), allowed: 2, refused: 3},
		wantUsage: keysv1.KeyUsage{Allowed: 102, Refused: 13, Since: &since, Hourly: []keysv1.HourlyUsage{
			{Hour: hour(9), Allowed: 30, Refused: 4}, {Hour: hour(16), Allowed: 22, Refused: 9},
		}},
	}, {
		name:   "refusals only leave lastUsedAt alone, and open a new hour in order",
		status: keysv1.ApiKeyStatus{LastUsedAt: ago(time.Hour), Usage: &keysv1.KeyUsage{Allowed: 1, Since: &since, Hourly: []keysv1.HourlyUsage{{Hour: hour(15), Allowed: 1}}}},
		d:      delta{refused: 2},
		wantUsage: keysv1.KeyUsage{Allowed: 1, Refused: 2, Since: &since, Hourly: []keysv1.HourlyUsage{
			{Hour: hour(15), Allowed: 1}, {Hour: hour(16), Refused: 2},
		}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "42"}, Status: tc.status}
			p := usagePatchOf(key, tc.d, now)
			if p.Metadata.ResourceVersion != "42" {
				t.Errorf("resourceVersion %q: the patch must be conditional on what was read", p.Metadata.ResourceVersion)
			}
			if diff := cmp.Diff(&tc.wantUsage, p.Status.Usage); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantLast, p.Status.LastUsedAt); diff != "" {
				t.Errorf("lastUsedAt (-want +got):\n%s", diff)
			}
		})
	}
}
