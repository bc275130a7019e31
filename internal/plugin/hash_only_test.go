package plugin_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apikey-operator/apikey-operator/internal/token"
)

// A token made on a workstation (apikey-operator hash --mint); the
// suite's leak check searches every output for it.
func workstationToken() (string, string) {
	tok, err := token.Mint("ak")
	Expect(err).NotTo(HaveOccurred())
	tokens.Remember(tok)
	return tok, token.Hash(tok)
}

var _ = Describe("kubectl apikey with hash-only keys", func() {
	ctx := context.Background()

	It("creates one from a hash, verifies its token, rotates it to a new hash, and never shows a Secret", func() {
		ns := newNamespace(ctx)
		first, firstHash := workstationToken()
		r := plugin(ns, "create", "partner", "--permission", "orders:read", "--token-hash", firstHash, "--wait")
		Expect(r.stdout).To(ContainSubstring("is Ready: prefix <none>, Secret none: hash-only key (spec.tokenHash), the cluster holds no token"))
		Expect(plugin(ns, "status", "partner").stdout).To(ContainSubstring("none: hash-only key"))

		t := kubectlRun("", "apikey", "-n", ns, "token", "partner")
		Expect(t.code).NotTo(Equal(0))
		Expect(t.stderr).To(ContainSubstring("is hash-only (spec.tokenHash): the cluster holds no token for it"))

		ok := kubectlRun(first+"\n", "apikey", "verify", "-n", ns, "--key-from-stdin", "--permission", "orders:read")
		Expect(ok.code).To(Equal(0), ok.stderr)
		Expect(ok.stdout).To(ContainSubstring("valid (Valid)"))

		bare := kubectlRun("", "apikey", "-n", ns, "rotate", "partner")
		Expect(bare.code).NotTo(Equal(0))
		Expect(bare.stderr).To(ContainSubstring("is hash-only: give the hash of its new token with --token-hash"))

		second, secondHash := workstationToken()
		r = plugin(ns, "rotate", "partner", "--token-hash", secondHash, "--wait")
		Expect(r.stdout).To(ContainSubstring("it verifies the token of spec.tokenHash " + secondHash))
		Expect(r.stdout).To(ContainSubstring("the previous token stopped working at once"))
		Expect(kubectlRun(second+"\n", "apikey", "verify", "-n", ns, "--key-from-stdin").code).To(Equal(0))
		Eventually(func() int {
			return kubectlRun(first+"\n", "apikey", "verify", "-n", ns, "--key-from-stdin").code
		}).Should(Equal(1), "the first token stops once the new hash is in status")
	})

	It("refuses --show-token with --token-hash, and --token-hash on a minted key", func() {
		ns := newNamespace(ctx)
		_, h := workstationToken()
		r := kubectlRun("", "apikey", "-n", ns, "create", "both", "--token-hash", h, "--show-token")
		Expect(r.code).NotTo(Equal(0))
		Expect(r.stderr).To(ContainSubstring("--show-token and --token-hash exclude each other"))

		plugin(ns, "create", "minted", "--wait")
		secretToken(ctx, ns, "minted")
		r = kubectlRun("", "apikey", "-n", ns, "rotate", "minted", "--token-hash", h)
		Expect(r.code).NotTo(Equal(0))
		Expect(r.stderr).To(ContainSubstring("--token-hash is for hash-only keys"))
	})
})
