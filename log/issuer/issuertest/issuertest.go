// Package issuertest makes signed submissions for tests: an issuer with an
// Ed25519 account key that registers its origin, submits PST key
// commitments with valid P-384 keys, and tracks its prev leaf hash.
//
// It is for tests only (its helpers fail the test on error); statements
// are signed as the CLI signs them, by log/issuer.
package issuertest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strconv"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/issuer"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
)

// Issuer is a test issuer. Prev is the leaf hash of its latest logged
// entry (nil before it registers); call Logged after each accepted
// submission, or set Prev directly.
type Issuer struct {
	// Log is the log its statements are signed for (DefaultLog unless
	// set).
	Log     string
	Origin  string
	Key     ed25519.PrivateKey
	Contact string
	Prev    []byte
	// NextID is the id the next commitment will carry (starts at 1).
	NextID uint32
}

// New returns an issuer for origin (an https origin, e.g.
// "https://issuer.example") with a fresh account key.
func New(tb testing.TB, origin string) *Issuer {
	tb.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return &Issuer{Log: DefaultLog, Origin: origin, Key: k, Contact: "mailto:ops@example.com", NextID: 1}
}

// DefaultLog is the log test issuers sign for: logtest.Origin.
const DefaultLog = "keycommit.example/log/test"

// AssumeControl is a sequencer.Config.OriginControl for tests that are
// not about proofs of origin control: it fetches nothing and records the
// proof the policy wants, as if every origin served its challenge.
func AssumeControl(_ context.Context, log, origin string, accountKey ed25519.PublicKey) (*schema.OriginControl, error) {
	return &schema.OriginControl{Method: schema.ControlHTTPS, URL: schema.ChallengeURL(log, origin, accountKey), Time: time.Now().UnixMilli()}, nil
}

// Numbered returns New(tb, "https://issuer<i>.example").
func Numbered(tb testing.TB, i int) *Issuer {
	return New(tb, "https://issuer"+strconv.Itoa(i)+".example")
}

// Sign returns a submission of kind with body (a Go value or JSON bytes),
// signed by the issuer's account key with the issuer's current Prev.
func (is *Issuer) Sign(tb testing.TB, kind schema.Kind, body any) *schema.Submission {
	tb.Helper()
	sub, err := issuer.Sign(is.Key, is.Log, is.Origin, is.Prev, kind, body)
	if err != nil {
		tb.Fatalf("issuertest: couldn't sign %s: %v", kind, err)
	}
	return sub
}

// DryRun returns sub's statement signed again by the issuer's account
// key as a dry run (POST /v1/check), which can never be logged.
func (is *Issuer) DryRun(tb testing.TB, sub *schema.Submission) *schema.Submission {
	tb.Helper()
	st := sub.Statement
	st.DryRun = true
	d, err := schema.Sign(st, is.Key)
	if err != nil {
		tb.Fatalf("issuertest: couldn't sign the dry run: %v", err)
	}
	return d
}

// Register returns a registration binding the origin to the issuer's
// account key (self-signed the first time, a renewal afterwards).
func (is *Issuer) Register(tb testing.TB) *schema.Submission {
	tb.Helper()
	return is.Sign(tb, schema.KindRegistration, &schema.Registration{Contact: is.Contact, AccountKey: is.Key.Public().(ed25519.PublicKey)})
}

// Commit returns a PST key commitment (PrivateStateTokenV1VOPRF, batch
// size 10) with n fresh keys expiring 30 days after now, carrying NextID,
// and increments NextID.
func (is *Issuer) Commit(tb testing.TB, n int, now time.Time) *schema.Submission {
	tb.Helper()
	c := &schema.KeyCommitment{PST: Commitment(tb, is.NextID, n, now.Add(30*24*time.Hour))}
	is.NextID++
	return is.Sign(tb, schema.KindKeyCommitment, c)
}

// Logged records that the issuer's submission was logged as entry bytes
// (Result.Entry) or with the given leaf hash: it becomes the next Prev.
func (is *Issuer) Logged(leafHash tlog.Hash) { is.Prev = append([]byte(nil), leafHash[:]...) }

// Commitment returns a PrivateStateTokenV1VOPRF commitment with id, batch
// size 10 and n fresh keys labelled 1..n expiring at expiry.
func Commitment(tb testing.TB, id uint32, n int, expiry time.Time) schema.PSTCommitment {
	tb.Helper()
	keys := map[string]schema.PSTKey{}
	for i := 1; i <= n; i++ {
		keys[strconv.Itoa(i)] = schema.PSTKey{Y: PSTKey(tb, uint32(i)), Expiry: strconv.FormatInt(expiry.UnixMicro(), 10)}
	}
	return schema.PSTCommitment{schema.PSTV1VOPRF: {ProtocolVersion: schema.PSTV1VOPRF, ID: id, BatchSize: 10, Keys: keys}}
}

// PSTKey returns a fresh valid VOPRF key in standard base64: the 4-byte
// big-endian id followed by an uncompressed P-384 point.
func PSTKey(tb testing.TB, id uint32) string {
	tb.Helper()
	y, _, err := issuer.NewPSTKey(id)
	if err != nil {
		tb.Fatal(err)
	}
	return y
}
