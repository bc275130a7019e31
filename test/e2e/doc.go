// Package e2e is the end-to-end suite: the operator's image, built here,
// installed with its Helm chart on a real one-node cluster (kubelet,
// containerd, runc, kube-proxy) that runs in a network namespace of its
// own. `make e2e` runs it (hack/e2e.sh); docs/e2e.md says what each
// scenario proves. The specs carry the build tag e2e, so `go test ./...`
// skips them.
package e2e
