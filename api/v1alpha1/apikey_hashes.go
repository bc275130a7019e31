package v1alpha1

// TokenHashes are the hashes (sha256:<hex>) of every token the key
// verifies now or did during a grace period: status.hash and
// status.previousHashes. One token belongs to one key across the cluster,
// and caches index keys by these to tell.
func (k *ApiKey) TokenHashes() []string {
	out := make([]string, 0, 1+len(k.Status.PreviousHashes))
	if k.Status.Hash != "" {
		out = append(out, k.Status.Hash)
	}
	for _, p := range k.Status.PreviousHashes {
		out = append(out, p.Hash)
	}
	return out
}
