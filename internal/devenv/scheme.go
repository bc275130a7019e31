package devenv

import (
	"net"

	"k8s.io/apimachinery/pkg/runtime"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/operator"
)

// Scheme is what a client of a local environment needs: the built-in
// types, the ApiKey group and ApiKeyReview.
func Scheme() *runtime.Scheme {
	s := operator.Scheme()
	if err := accessv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// FreePort is a loopback port that is free right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
