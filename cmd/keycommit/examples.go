package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// examples are the Examples sections of the commands' --help, by command
// path (without "keycommit "). A command's own Example field wins; every
// command must have one or the other (TestEveryCommandHasExamples).
var examples = map[string]string{
	"": `  keycommit dev                      # a complete local deployment, to try things
  keycommit help issuer              # the issuer tools
  keycommit --version`,
	"log": `  keycommit log init --data /var/lib/keycommit/log --origin keycommit.example/log/2026
  keycommit log serve --data /var/lib/keycommit/log --listen :7370 --witness-policy /etc/keycommit/witnesses.txt
  keycommit log backup --data /var/lib/keycommit/log --out /backup/log-$(date +%F).db`,
	"log init": `  keycommit log init --data /var/lib/keycommit/log --origin keycommit.example/log/2026
  keycommit log init --data ./log --origin keycommit.example/log/2026 --json
  keycommit log init --storage trillian --trillian 127.0.0.1:8090 --data ./frontend --origin keycommit.example/log/2026`,
	"log serve": `  keycommit log serve --data /var/lib/keycommit/log --listen 127.0.0.1:7370
  keycommit log serve --data ./log --listen :7370 --witness-policy witnesses.txt --log-level debug
  keycommit log serve --storage trillian --data ./frontend --listen :7371`,
	"log migrate": `  keycommit log migrate --data /var/lib/keycommit/log --trillian 127.0.0.1:8090
  keycommit log migrate --data ./log --trillian 127.0.0.1:8090 --tree-id 123456 --json`,
	"log backup": `  keycommit log backup --data /var/lib/keycommit/log --out /backup/log.db
  keycommit log backup --data ./log --out log-$(date +%F).db --json`,
	"witness": `  keycommit witness init --data /var/lib/keycommit/witness --name witness.example.com/w1
  keycommit witness add-log --data /var/lib/keycommit/witness --origin keycommit.example/log/2026 --vkey "$KEYCOMMIT_LOG_VKEY"
  keycommit witness serve --data /var/lib/keycommit/witness --listen :7380`,
	"witness init": `  keycommit witness init --data /var/lib/keycommit/witness --name witness.example.com/w1
  keycommit witness init --data ./w1 --name witness.example.com/w1 --json
  keycommit witness init --data ./pq --name witness.example.com/pq --mldsa --ed25519=false`,
	"witness add-log": `  keycommit witness add-log --data /var/lib/keycommit/witness --origin keycommit.example/log/2026 --vkey "$KEYCOMMIT_LOG_VKEY"`,
	"witness list-logs": `  keycommit witness list-logs --data /var/lib/keycommit/witness
  keycommit witness list-logs --data /var/lib/keycommit/witness --json`,
	"witness serve": `  keycommit witness serve --data /var/lib/keycommit/witness --listen 127.0.0.1:7380`,
	"monitor": `  keycommit monitor --once --log "$KEYCOMMIT_LOG" --log-vkey "$KEYCOMMIT_LOG_VKEY"
  keycommit monitor --once --json          # the log and key from $KEYCOMMIT_LOG and $KEYCOMMIT_LOG_VKEY
  keycommit monitor --data /var/lib/keycommit/monitor --listen :7390 --watch https://issuer.example --webhook https://alerts.example/hook`,
	"monitor check-evidence": `  keycommit monitor check-evidence evidence.json --log-vkey "$KEYCOMMIT_LOG_VKEY"
  keycommit monitor check-evidence evidence.json --json    # the key from $KEYCOMMIT_LOG_VKEY`,
	"issuer": `  export KEYCOMMIT_LOG=http://127.0.0.1:7370 KEYCOMMIT_LOG_VKEY='<the log's vkey>'
  keycommit issuer keygen --out issuer.key
  keycommit issuer register --origin https://issuer.example --contact mailto:keys@issuer.example
  keycommit issuer submit --origin https://issuer.example --commitment commitment.json
  keycommit issuer status --origin https://issuer.example`,
	"issuer keygen": `  keycommit issuer keygen --out issuer.key
  keycommit issuer keygen --out issuer.key --json`,
	"issuer register": `  keycommit issuer register --origin https://issuer.example --contact mailto:keys@issuer.example --key issuer.key
  keycommit issuer register --origin https://issuer.example --contact mailto:keys@issuer.example --dry-run
  keycommit issuer register --origin https://issuer.example --contact mailto:keys@issuer.example --new-key next.key --json`,
	"issuer submit": `  keycommit issuer submit --origin https://issuer.example --commitment commitment.json --dry-run
  keycommit issuer submit --origin https://issuer.example --commitment commitment.json --json
  keycommit issuer submit --origin https://issuer.example --commitment commitment.json --emergency incident.json
  keycommit issuer submit --origin https://issuer.example --commitment commitment.json --logs keycommit-dev/trust.txt`,
	"issuer challenge": `  keycommit issuer challenge --key issuer.key --origin https://issuer.example --out challenge.txt
  keycommit issuer register --origin https://issuer.example --contact mailto:keys@issuer.example --key issuer.key`,
	"issuer report": `  keycommit issuer report --origin https://issuer.example --emergency-index 42 --report final-report.json`,
	"issuer status": `  keycommit issuer status --origin https://issuer.example
  keycommit issuer status --origin issuer.example --json --log http://127.0.0.1:7370 --log-vkey "$KEYCOMMIT_LOG_VKEY"
  keycommit issuer status --origin issuer.example --log "$LOG_A" --log-vkey "$VKEY_A" --log "$LOG_B" --log-vkey "$VKEY_B"`,
	"issuer gen-commitment": `  keycommit issuer gen-commitment --out commitment.json --keys-out commitment-keys.json
  keycommit issuer gen-commitment --id 2 --first-key 3 --keys 2 --out next.json --keys-out next-keys.json --json`,
	"policy": `  keycommit policy check commitment.json
  keycommit policy params --json`,
	"policy check": `  keycommit policy check commitment.json
  keycommit policy check commitment.json --issuer https://issuer.example       # against $KEYCOMMIT_LOG's history
  keycommit policy check commitment.json --issuer https://issuer.example --key issuer.key --json`,
	"policy params": `  keycommit policy params
  keycommit policy params --log "$KEYCOMMIT_LOG" --json`,
	"verify": `  keycommit verify --bundle http://127.0.0.1:7370/v1/keys.bundle --witness-policy witnesses.txt --save keys.bundle
  keycommit verify --bundle "$KEYCOMMIT_LOG/v1/keys.bundle" --witness-policy witnesses.txt --previous keys.bundle --save keys.bundle --json
  keycommit verify --bundle keys.bundle --log-vkey "$KEYCOMMIT_LOG_VKEY" --witness-policy witnesses.txt --max-age 24h
  keycommit verify --trust trust.txt                 # several logs (docs/multilog.md)
  keycommit verify --trust trust.txt --min-logs 1 --json | jq .pst > pst-key-commitments.json`,
	"dev": `  keycommit dev
  keycommit dev --data /tmp/kc --base-port 0      # free ports
  go run ./cmd/keycommit dev --log-level info
  keycommit dev --base-port 0 --json 2>dev.log    # stdout: one JSON object once it is up
  keycommit dev --logs 2                          # two independent logs; then verify --trust keycommit-dev/trust.txt`,
}

// setExamples fills in the Example of every command below root from
// examples.
func setExamples(root *cobra.Command) {
	walkCommands(root, func(c *cobra.Command) {
		if c.Example == "" {
			c.Example = examples[commandKey(c)]
		}
	})
}

// commandKey is c's path without the root's name.
func commandKey(c *cobra.Command) string {
	p := c.CommandPath()
	if i := strings.IndexByte(p, ' '); i >= 0 {
		return p[i+1:]
	}
	return ""
}

// walkCommands calls f on c and every command below it.
func walkCommands(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, s := range c.Commands() {
		walkCommands(s, f)
	}
}

// flagValues are the values the shell completes for flags, by flag name.
var flagValues = map[string][]string{
	"storage":   {"sqlite\tembedded SQLite, one machine", "trillian\tTrillian log server on MySQL/MariaDB"},
	"log-level": {"debug", "info", "warn", "error"},
}

// setCompletions registers the completion of flag values (flagValues) on
// every command below root that has those flags.
func setCompletions(root *cobra.Command) {
	walkCommands(root, func(c *cobra.Command) {
		for name, vals := range flagValues {
			if c.Flags().Lookup(name) == nil {
				continue
			}
			vals := vals
			c.RegisterFlagCompletionFunc(name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				return vals, cobra.ShellCompDirectiveNoFileComp
			})
		}
	})
}
