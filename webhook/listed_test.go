package webhook

import "testing"

func TestListed(t *testing.T) {
	cases := []struct {
		names  []string
		budget int
		want   string
	}{
		{nil, 10, ""},
		{[]string{"a"}, 10, "a"},
		{[]string{"a", "b", "c"}, 10, "a, b, c"},
		{[]string{"alpha", "beta", "gamma"}, 12, "alpha, beta and 1 more"},
		{[]string{"a-very-long-name", "b"}, 4, "a-very-long-name and 1 more"},
	}
	for _, c := range cases {
		if got := listed(c.names, c.budget); got != c.want {
			t.Errorf("listed(%q, %d) = %q, want %q", c.names, c.budget, got, c.want)
		}
	}
}
