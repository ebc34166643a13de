package monitor

import (
	"encoding/json"
	"net"
	"testing"
)

// TestGossipStatus: after a round, Gossip (and GET /v1/gossip) reports
// each peer's latest pull: a live peer's success, a dead one's error.
func TestGossipStatus(t *testing.T) {
	l := newTestLog(t, "keycommit.example/log/gossip-status")
	peer := newTestMonitor(t, "", nil, l)
	peer.once(t)
	peerURL := httptestServer(t, peer.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	m := newTestMonitor(t, "", func(c *Config) { c.Peers = []string{peerURL, dead} }, l)
	if g := m.Gossip(); len(g) != 2 || !g[0].LastPull.IsZero() {
		t.Fatalf("before any round: %+v", g)
	}
	m.once(t)
	g := m.Gossip()
	if len(g) != 2 || g[0].URL != peerURL || g[0].LastOK.IsZero() || g[0].Error != "" {
		t.Errorf("live peer: %+v", g)
	}
	if len(g) == 2 && (g[1].URL != dead || g[1].LastPull.IsZero() || !g[1].LastOK.IsZero() || g[1].Error == "") {
		t.Errorf("dead peer: %+v", g[1])
	}
	var served []GossipStatus
	if err := json.Unmarshal(httpGetBody(t, httptestServer(t, m.Handler())+"/v1/gossip"), &served); err != nil || len(served) != 2 || served[1].Error != g[1].Error {
		t.Errorf("GET /v1/gossip: %v %+v", err, served)
	}
}
