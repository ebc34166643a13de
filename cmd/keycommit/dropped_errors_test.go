package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/monitor"
)

// TestServeBackgroundReportsStop: a server whose listener fails reports
// the error on the channel (dev returns it and stops) and in the log,
// naming the server; one stopped by Shutdown reports nothing. (Restore
// dev's old `go srv.Serve(ln)` and the error is dropped: nothing arrives.)
func TestServeBackgroundReportsStop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // Serve fails at once: accept on a closed listener
	var logged bytes.Buffer
	errc := make(chan error, 1)
	serveBackground(&http.Server{}, ln, "witness w1", slog.New(slog.NewTextHandler(&logged, nil)), errc)
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "witness w1 server stopped") {
		t.Errorf("error %v, want the witness w1 server named", err)
	}
	if !strings.Contains(logged.String(), "server stopped") || !strings.Contains(logged.String(), "witness w1") {
		t.Errorf("log: %s", logged.String())
	}

	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{}
	errc = make(chan error, 1)
	serveBackground(srv, ln, "monitor", slog.New(slog.DiscardHandler), errc)
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		t.Errorf("after Shutdown: %v, want nothing", err)
	default:
	}
}

// TestMonitorOnceExitCodes: `monitor --once` exits 2 when it raised an
// alert, even when the same run also failed (an alert that could not be
// stored is written out, counted, and listed with the store's error in
// Errors: monitor's TestUnstoredAlertNotLost), and 1 for errors alone.
// (Test the errors before the alerts in reportOnce and the first row
// exits 1.)
func TestMonitorOnceExitCodes(t *testing.T) {
	for _, c := range []struct {
		rep  monitor.Report
		code int
	}{
		{monitor.Report{Alerts: 1, Errors: []string{"couldn't store alerts: database is closed"}}, 2},
		{monitor.Report{Evidence: 1}, 2},
		{monitor.Report{Errors: []string{"couldn't fetch the checkpoint"}}, 1},
		{monitor.Report{}, 0},
	} {
		err := reportOnce(io.Discard, &c.rep, false, nil)
		code := 0
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else if err != nil {
			code = -1
		}
		if code != c.code {
			t.Errorf("%+v: exit %d (%v), want %d", c.rep, code, err, c.code)
		}
	}
}
