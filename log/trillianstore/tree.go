package trillianstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/trillian"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Dial connects to a Trillian log server's gRPC endpoint (plaintext: run
// it on loopback or a private network, as Trillian's own docs do).
func Dial(addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("couldn't connect to Trillian at %s: %w", addr, err)
	}
	return conn, nil
}

// ReadyTimeout bounds how long CreateTree and CheckTree wait for a Trillian
// log server that is not listening yet (one started a moment before).
const ReadyTimeout = 30 * time.Second

// CreateTree creates an active PREORDERED_LOG tree through the admin API
// (the kind this backend needs: keycommit assigns the indexes), initializes
// it with InitLog, and waits until its empty root is readable. The
// description names the log (Trillian keeps display names to 20 bytes).
// It waits up to ReadyTimeout for the server to listen.
func CreateTree(ctx context.Context, admin trillian.TrillianAdminClient, lc trillian.TrillianLogClient, description string) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	tree, err := admin.CreateTree(rctx, &trillian.CreateTreeRequest{Tree: &trillian.Tree{
		TreeState:   trillian.TreeState_ACTIVE,
		TreeType:    trillian.TreeType_PREORDERED_LOG,
		DisplayName: "keycommit",
		Description: description,
		// No roots without new leaves: keycommit signs its own checkpoints.
		MaxRootDuration: durationpb.New(0),
	}}, grpc.WaitForReady(true))
	if err != nil {
		return 0, fmt.Errorf("couldn't create a Trillian tree: %w", err)
	}
	if _, err := lc.InitLog(ctx, &trillian.InitLogRequest{LogId: tree.TreeId}); err != nil {
		return 0, fmt.Errorf("couldn't initialize Trillian tree %d: %w", tree.TreeId, err)
	}
	for {
		_, err := lc.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: tree.TreeId})
		if err == nil {
			return tree.TreeId, nil
		}
		select {
		case <-ctx.Done():
			return 0, errors.Join(fmt.Errorf("tree %d has no root yet", tree.TreeId), err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// CheckTree checks that tree id exists and is an active PREORDERED_LOG. It
// waits up to ReadyTimeout for the server to listen.
func CheckTree(ctx context.Context, admin trillian.TrillianAdminClient, id int64) error {
	rctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	t, err := admin.GetTree(rctx, &trillian.GetTreeRequest{TreeId: id}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("couldn't get Trillian tree %d: %w", id, err)
	}
	if t.TreeType != trillian.TreeType_PREORDERED_LOG {
		return fmt.Errorf("the Trillian tree %d is a %v; keycommit needs a PREORDERED_LOG tree", id, t.TreeType)
	}
	if t.TreeState != trillian.TreeState_ACTIVE {
		return fmt.Errorf("the Trillian tree %d is %v, not ACTIVE", id, t.TreeState)
	}
	return nil
}
