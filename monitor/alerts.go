package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Alert kinds.
const (
	// KindPolicy: the log admitted an entry the policy refuses (Rule
	// names the policy rule).
	KindPolicy = "policy"
	// KindSnapshot: a snapshot entry's digest or issuer count differs from
	// the key set recomputed from the entries before it.
	KindSnapshot = "snapshot"
	// KindTimestamp: an issuer's entry time goes backwards.
	KindTimestamp = "timestamp"
	// KindNonCanonical: an entry is not in the canonical encoding.
	KindNonCanonical = "non-canonical"
	// KindMalformed: an entry does not parse at all.
	KindMalformed = "malformed-entry"
	// KindInclusion: the entries the log serves do not hash to the tree
	// its signed checkpoint commits to.
	KindInclusion = "inclusion"
	// KindCheckpoint: the log served a checkpoint with a bad signature or
	// body.
	KindCheckpoint = "checkpoint"
	// KindSplitView: two checkpoints signed by the log are inconsistent;
	// Evidence names the stored evidence bundle.
	KindSplitView = "split-view"
	// KindKeyChange: a watched origin's committed keys changed.
	KindKeyChange = "key-change"
	// KindAccountKeyChange: a watched origin's account key changed, or the
	// origin was registered.
	KindAccountKeyChange = "account-key-change"
	// KindReclaim: a watched origin was reclaimed after its registration
	// lapsed, by a new account key that proved control of the origin.
	KindReclaim = "reclaim"
)

// Rules the monitor checks itself, besides the policy's.
const (
	RuleCanonical   = "canonical-encoding"
	RuleEntryFormat = "entry-format"
	RuleInclusion   = "inclusion"
	RuleSignature   = "checkpoint-signature"
	RuleConsistency = "consistency"
	RuleWatch       = "watch"
)

// Alert is one finding, written as a JSON line.
type Alert struct {
	Time time.Time `json:"time"`
	// Log is the origin of the log the alert is about.
	Log  string `json:"log"`
	Kind string `json:"kind"`
	// Index is the log index of the entry the alert is about, if any.
	Index *int64 `json:"index,omitempty"`
	// Rule names the rule that was broken.
	Rule string `json:"rule,omitempty"`
	// Issuer is the issuer origin concerned, if any.
	Issuer  string `json:"issuer,omitempty"`
	Message string `json:"message"`
	// Evidence is the id of an evidence bundle (split-view, time or
	// cross-log), served at /v1/evidence/<id>.
	Evidence string `json:"evidence,omitempty"`
}

// key identifies what the alert is about; an alert with a key already
// stored is not raised again.
func (a *Alert) key() string {
	idx := "-"
	if a.Index != nil {
		idx = strconv.FormatInt(*a.Index, 10)
	}
	extra := a.Evidence
	if extra == "" && a.Index == nil {
		extra = a.Message
	}
	return a.Log + "|" + a.Kind + "|" + a.Rule + "|" + idx + "|" + extra
}

func index(i int64) *int64 { return &i }

// Delivery sinks, as bits of alerts.delivered.
const (
	sinkOut     = 1
	sinkWebhook = 2
)

// deliver sends every stored alert a sink has not received yet, in order.
// Delivery to the webhook is retried on the next call when it fails.
func (m *Monitor) deliver(ctx context.Context) error {
	m.deliverMu.Lock()
	defer m.deliverMu.Unlock()
	mask := sinkOut
	if m.cfg.Webhook != "" {
		mask |= sinkWebhook
	}
	pending, err := m.store.undelivered(ctx, mask)
	if err != nil {
		return err
	}
	var webhookErr error
	for _, a := range pending {
		done := 0
		if a.delivered&sinkOut == 0 {
			if _, err := m.out.Write(append(bytes.TrimSpace(a.body), '\n')); err != nil {
				return fmt.Errorf("couldn't write an alert: %w", err)
			}
			done |= sinkOut
			var al Alert
			if json.Unmarshal(a.body, &al) == nil {
				m.metrics.alerts.WithLabelValues(al.Kind).Inc()
				m.noteAlert()
			}
		}
		if mask&sinkWebhook != 0 && a.delivered&sinkWebhook == 0 && webhookErr == nil {
			if webhookErr = m.postWebhook(ctx, a.body); webhookErr == nil {
				done |= sinkWebhook
			} else {
				m.log.Warn("couldn't deliver an alert to the webhook; will retry", "err", webhookErr)
			}
		}
		if done != 0 {
			if err := m.store.markDelivered(ctx, a.id, done); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *Monitor) postWebhook(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.cfg.Webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.hc.Do(req)
	if err != nil {
		return fmt.Errorf("couldn't POST to the webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
