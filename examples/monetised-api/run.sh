#!/usr/bin/env bash
# The monetised-API example: the demo upstream and Sluice in front of it, on loopback.
# Prints curl commands to try; stops everything on Ctrl-C.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
export SLUICE_ADMIN_TOKEN="${SLUICE_ADMIN_TOKEN:-example-admin-token-0123456789}"

sluice=(node "$root/dist/cli/main.js")
[ -f "$root/dist/cli/main.js" ] || sluice=(node --import tsx "$root/src/cli/main.ts")
(cd "$root" && exec "${sluice[@]}" demo-upstream --port 3000) & pids+=($!)
(cd "$root" && exec "${sluice[@]}" serve --config "$here/sluice.yaml" --no-watch) & pids+=($!)
sleep 1.5
cat <<MSG

Sluice on http://127.0.0.1:8080, admin API on http://127.0.0.1:9090 (token \$SLUICE_ADMIN_TOKEN).

  # the free plan: 100 calls a month, 20 on the LLM route, 10 per second at most
  curl -s -i http://127.0.0.1:8080/v1/orders -H 'x-api-key: demo-key-free-0123456789'
  for i in \$(seq 1 21); do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:8080/v1/completions -H 'x-api-key: demo-key-free-0123456789'; done; echo
  curl -s http://127.0.0.1:8080/v1/completions -H 'x-api-key: demo-key-free-0123456789'   # 429: "Quota exhausted ... renews at"

  # LLM tokens: the upstream reports what a completion used (x-tokens-used), and the daily token
  # budget (free 2 000, pro 200 000) is charged that much: see the "llm-tokens" RateLimit entry
  curl -s -i -X POST http://127.0.0.1:8080/v1/completions -H 'x-api-key: demo-key-pro-0123456789' --data "\$(seq 1 2000)"

  # what a consumer used, and when it resets (acme's month runs from its billing anchor, the 15th)
  curl -s http://127.0.0.1:9090/consumers/hobbyist/usage -H "authorization: Bearer \$SLUICE_ADMIN_TOKEN"
  ${sluice[*]} report --admin http://127.0.0.1:9090 --consumer acme --token \$SLUICE_ADMIN_TOKEN

  # sign up a consumer at runtime (the key is shown once), then give it its own billing date
  curl -s -X POST http://127.0.0.1:9090/consumers -H "authorization: Bearer \$SLUICE_ADMIN_TOKEN" \\
       -H 'content-type: application/json' -d '{"sub": "startup", "tier": "pro", "issueKey": true}'
  curl -s -X PATCH http://127.0.0.1:9090/consumers/startup -H "authorization: Bearer \$SLUICE_ADMIN_TOKEN" \\
       -H 'content-type: application/json' -d '{"billingAnchor": "2026-11-03T00:00:00Z"}'

Ctrl-C stops everything.
MSG
wait
