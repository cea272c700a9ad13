package redact

import "testing"

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://api.example.com/items/1", "https://api.example.com/items/1"},
		{"http://127.0.0.1:18799?key=QueryKeyS3cret", "http://127.0.0.1:18799"},
		{"https://api.example.com/cb#access_token=abc", "https://api.example.com/cb"},
		{"https://user:pw@api.example.com/x?y=1", "https://api.example.com/x"},
		{"https://user:p?w#d@api.example.com", "https://api.example.com"}, // malformed: no half password
		{"//user:pw@other.example/login?next=/", "//other.example/login"},
		{"/login?token=abc", "/login"},
		{"http://[::1]:80/a b?c", "http://[::1]:80/a b"},
		{"", ""},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTemplateURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/reports/summary?api_key=pk-QUERY-SECRET-9d8e7f", "/reports/summary?api_key=..."},
		{"/coupons/{{coupon_id}}/redeem?id={{coupon_id}}&page=2&flag", "/coupons/{{coupon_id}}/redeem?id={{coupon_id}}&page=...&flag=..."},
		{"https://admin:pw@idp.test/revoke?t={{token}}#frag", "https://idp.test/revoke?t={{token}}"},
		{"/items/{{id}}#x", "/items/{{id}}"},
		{"/a?k={{a}}{{b}}", "/a?k=..."},
	} {
		if got := TemplateURL(tc.in); got != tc.want {
			t.Errorf("TemplateURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
