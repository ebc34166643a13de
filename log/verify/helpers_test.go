package verify_test

import (
	"context"

	"github.com/keycommit/keycommit/log/bundle"
)

func bundleBuildIssuerProof(f *fixture, issuer string) ([]byte, error) {
	return bundle.BuildIssuerProof(context.Background(), f.log, issuer)
}
