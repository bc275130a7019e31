package devenv

import (
	"k8s.io/apimachinery/pkg/runtime"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := keysv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
