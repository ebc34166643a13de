package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/keycommit/keycommit/log/explorer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/monitor"
	mexplorer "github.com/keycommit/keycommit/monitor/explorer"
	"github.com/keycommit/keycommit/witness/quorum"
)

// explorerExtra is the server.StartConfig.Extra hook of `log serve` (every
// backend) and dev: the web explorer (log/explorer) at "/", over the log's
// backend and policy, checking cosignatures against the witness policy
// file if the log has one.
func explorerExtra(m server.Mounting) (map[string]http.Handler, error) {
	ec := explorer.Config{Log: m.Backend, Verifier: m.Verifier, VKey: m.VKey, Policy: m.Log, Logger: m.Logger}
	if m.WitnessPolicy != "" {
		b, err := os.ReadFile(m.WitnessPolicy)
		if err != nil {
			return nil, fmt.Errorf("explorer: %w", err)
		}
		if ec.Witnesses, err = quorum.Parse(b); err != nil {
			return nil, fmt.Errorf("explorer: witness policy %s: %w", m.WitnessPolicy, err)
		}
	}
	ex, err := explorer.New(ec)
	if err != nil {
		return nil, err
	}
	return map[string]http.Handler{"/": ex}, nil
}

// monitorExplorer is the monitor's web page (monitor/explorer), served at
// GET / of `keycommit monitor --listen` and dev's monitor.
func monitorExplorer(m *monitor.Monitor, logger *slog.Logger) (http.Handler, error) {
	return mexplorer.New(mexplorer.Config{Monitor: m, Logger: logger})
}
