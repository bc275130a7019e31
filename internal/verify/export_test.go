package verify

import "context"

// What the external envtest suite (package verify_test, which builds the
// operator through internal/operator and so cannot live in this package)
// needs from the unit tests' helpers and the package's internals.
var (
	Perms       = perms
	IPs         = ips
	FlipLast    = flipLast
	GatherText  = gatherText
	ResultsDesc = resultsDesc
)

type VerifyResponse = verifyResponse

// ConflictRetries bounds the usage writes of one flush.
const ConflictRetries = conflictRetries

// Flush writes the usage counted since the last flush now.
func (s *Server) Flush(ctx context.Context) { s.flusher.flush(ctx) }
