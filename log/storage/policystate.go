package storage

import "context"

// PolicyState is a serialised policy state (policy.State.MarshalBinary)
// and the tree size it covers: the state after applying entries 0 to
// Size-1. A sequencer stores one with a batch every so often, in the same
// atomic step as the batch, so that a restart loads it and replays only
// the entries after it.
type PolicyState struct {
	Size uint64
	Data []byte
}

// PolicyStateReader is implemented by backends that store
// Batch.PolicyState. It is optional: a sequencer over a backend without
// it replays every stored entry at startup.
type PolicyStateReader interface {
	// PolicyState returns the latest stored policy state, or ErrNotFound.
	// Its Size is never beyond the stored tree size, since it is stored
	// atomically with the batch that ends there.
	PolicyState(ctx context.Context) (*PolicyState, error)
}
