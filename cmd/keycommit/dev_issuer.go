package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"

	"github.com/keycommit/keycommit/log/challenge"
	"github.com/keycommit/keycommit/schema"
)

// devCAFile is the dev deployment's throwaway CA certificate, written for
// anyone who wants to fetch the demo issuer's challenges themselves.
const devCAFile = "demo-issuer-ca.pem"

// devOrigin is the demo issuer's HTTPS origin for `keycommit dev`: a
// loopback HTTPS server with its own throwaway CA, serving the challenges
// that prove control of devIssuer, so the demo registration goes through
// the log's real check (the log trusts the CA and dials the server for
// devIssuer's host, as --challenge-ca and --challenge-dial do).
type devOrigin struct {
	ca   *challenge.CA
	resp *challenge.Responder
	addr string
	srv  *http.Server
}

// startDevOrigin starts the demo issuer's HTTPS server on 127.0.0.1 and
// writes its CA certificate to dir.
func startDevOrigin(dir string) (*devOrigin, error) {
	ca, err := challenge.NewCA("keycommit dev demo issuer CA")
	if err != nil {
		return nil, err
	}
	u, err := schema.NormalizeOrigin(devIssuer)
	if err != nil {
		return nil, err
	}
	host := u[len("https://"):]
	cert, err := ca.ServerCert(host)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, devCAFile), ca.PEM, 0o644); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("couldn't listen for the demo issuer: %w", err)
	}
	d := &devOrigin{ca: ca, resp: &challenge.Responder{}, addr: ln.Addr().String()}
	mux := http.NewServeMux()
	mux.Handle(schema.ChallengePath, d.resp)
	d.srv = &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ErrorLog: log.New(io.Discard, "", 0)}
	go func() {
		if err := d.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ln.Close()
		}
	}()
	return d, nil
}

// fetcher returns the log's challenge fetcher for the dev deployment: the
// demo CA trusted, the demo issuer's host dialled on loopback.
func (d *devOrigin) fetcher() (*challenge.Fetcher, error) {
	pool := d.ca.Pool()
	host := devIssuer[len("https://"):]
	return challenge.New(challenge.Config{Roots: pool, Dial: map[string]string{host: d.addr}})
}

func (d *devOrigin) close() { d.srv.Close() }
