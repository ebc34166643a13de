package sequencer

// Step 4, the witness loop: cosign the latest published checkpoint
// through the Witness hook and store it with SetCosigned. It never blocks
// steps 1-3.

import (
	"context"
	"fmt"

	"github.com/keycommit/keycommit/log/checkpoint"
)

// witnessLoop calls the Witness hook with the latest checkpoint, one call
// at a time, and stores what it returns once verified.
func (s *Sequencer) witnessLoop() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	for {
		var signed []byte
		select {
		case signed = <-s.witnessCh:
		case <-s.stop:
			return
		}
		if err := s.cosign(ctx, signed); err != nil {
			s.metrics.witnessErrors.Inc()
			s.log.Warn("couldn't get checkpoint cosigned", "err", err)
		}
	}
}

func (s *Sequencer) cosign(ctx context.Context, signed []byte) error {
	c, _, err := checkpoint.Open(signed, s.cfg.Verifier)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.WitnessTimeout)
	defer cancel()
	cosigned, err := s.cfg.Witness(wctx, signed)
	if err != nil {
		return fmt.Errorf("witness hook failed for checkpoint of size %d: %w", c.Size, err)
	}
	c2, n, err := checkpoint.Open(cosigned, s.cfg.Verifier)
	if err != nil {
		return fmt.Errorf("witness hook returned a bad note: %w", err)
	}
	if c2.Size != c.Size || c2.Hash != c.Hash || string(c2.Marshal()) != string(c.Marshal()) || len(n.Sigs) != 1 {
		return fmt.Errorf("witness hook returned a different checkpoint (size %d) for size %d", c2.Size, c.Size)
	}
	if err := s.cfg.Backend.SetCosigned(ctx, c.Size, cosigned); err != nil {
		return err
	}
	s.log.Debug("checkpoint cosigned", "size", c.Size, "signatures", len(n.UnverifiedSigs)+1)
	return nil
}
