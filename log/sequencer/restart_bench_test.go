package sequencer_test

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	restartEntries = 200_000
	restartIssuers = 2_000
	restartTail    = 8_192 // entries after the stored policy state
)

var (
	restartOnce sync.Once
	restartPath string
	restartCfg  sequencer.Config
	benchDirs   []string
)

// buildRestartLog builds (once) the log of BenchmarkRestart.
func buildRestartLog(b *testing.B) (string, sequencer.Config) {
	restartOnce.Do(func() { restartPath, restartCfg = buildLog(b, restartEntries, restartIssuers, restartTail) })
	return restartPath, restartCfg
}

// buildLog writes a SQLite log of total entries (issuers issuers, each a
// registration and renewals) straight to storage, with real tiles and
// checkpoints, in batches of tail entries, and the policy state stored
// with the batch that ends tail entries or fewer before the end, as the
// sequencer stores one every StateEvery entries. Apply does not check
// signatures, and replaying a log only applies.
func buildLog(b *testing.B, total uint64, issuers int, tail int) (string, sequencer.Config) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "keycommit-restart-")
	if err != nil {
		b.Fatal(err)
	}
	benchDirs = append(benchDirs, dir)
	path := filepath.Join(dir, "log.db")
	store, err := sqlitestore.Create(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	cfg := benchConfig(b, store)
	if _, err := sequencer.Init(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	es, _ := store.Entries(ctx, 0, 1)
	st := policy.NewState()
	e0, _ := schema.ParseEntry(es[0])
	if err := st.Apply(e0, 0, tiles.LeafHash(es[0])); err != nil {
		b.Fatal(err)
	}
	app, err := tiles.NewAppender(1, func(t tlog.Tile) ([]byte, error) { return store.Tile(ctx, t.L, t.N) })
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]ed25519.PublicKey, issuers)
	for i := range keys {
		keys[i] = issuertest.Numbered(b, i).Key.Public().(ed25519.PublicKey)
	}
	prev := make([][]byte, issuers)
	sig := make([]byte, 64)
	for start := uint64(1); start < total; {
		var batch []storage.Entry
		var hs []tlog.Hash
		for start+uint64(len(batch)) < total && len(batch) < tail {
			idx := start + uint64(len(batch))
			i := int(idx) % issuers
			body, _ := schema.CanonicalizeBody(schema.KindRegistration, &schema.Registration{Contact: "mailto:ops@example.com", AccountKey: keys[i]})
			e := &schema.Entry{V: schema.Version, Kind: schema.KindRegistration, Time: 1772366400000 + int64(idx), Issuer: "https://issuer" + strconv.Itoa(i) + ".example", Prev: prev[i], Body: body, Sig: sig}
			d, err := e.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			h := tiles.LeafHash(d)
			if err := st.Apply(e, idx, h); err != nil {
				b.Fatal(err)
			}
			prev[i] = append([]byte(nil), h[:]...)
			batch = append(batch, storage.Entry{Data: d, LeafHash: h, Issuer: e.Issuer})
			hs = append(hs, h)
		}
		u, err := app.Append(hs)
		if err != nil {
			b.Fatal(err)
		}
		cp, _ := checkpoint.Sign(checkpoint.Checkpoint{Origin: cfg.Signer.Name(), Size: uint64(u.Size), Hash: u.Root}, cfg.Signer)
		bt := &storage.Batch{Start: start, Entries: batch, Tiles: u.Tiles, Checkpoint: cp}
		if n := uint64(u.Size); n+uint64(tail) >= total && n < total {
			d, err := st.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			bt.PolicyState = &storage.PolicyState{Size: n, Data: d}
		}
		if err := store.Append(ctx, bt); err != nil {
			b.Fatal(err)
		}
		start += uint64(len(batch))
	}
	return path, cfg
}

// hiddenState hides the backend's stored policy state: a full replay.
type hiddenState struct{ storage.Backend }

// BenchmarkRestart measures sequencer.New over a 200,000-entry SQLite
// log: "stored-state" loads the stored policy state and applies the
// 8,192 entries after it; its baseline "full-replay" applies every entry
// (as a backend that can't store the state does).
func BenchmarkRestart(b *testing.B) {
	for _, tc := range []struct {
		name string
		wrap func(storage.Backend) storage.Backend
	}{
		{"stored-state", func(be storage.Backend) storage.Backend { return be }},
		{"full-replay", func(be storage.Backend) storage.Backend { return hiddenState{be} }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			path, cfg := buildRestartLog(b)
			ctx := context.Background()
			store, err := sqlitestore.Open(ctx, path)
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			cfg.Backend = tc.wrap(store)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				seq, err := sequencer.New(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if size, _ := seq.Checkpoint(); size != restartEntries {
					b.Fatalf("size %d", size)
				}
				seq.Close()
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/restart")
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range benchDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}
