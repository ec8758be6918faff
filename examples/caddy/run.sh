#!/usr/bin/env bash
# Caddy (forward_auth) -> Sluice forward-auth -> the demo upstream, all on loopback.
# Starts the three, prints the proxy URL and a curl loop, stops everything on Ctrl-C.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if ! command -v caddy >/dev/null 2>&1; then
  echo "caddy not found: installing Debian's caddy" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq caddy; else sudo apt-get update -qq && sudo apt-get install -y -qq caddy; fi
fi
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM

sluice=(node "$root/dist/cli/main.js")
[ -f "$root/dist/cli/main.js" ] || sluice=(node --import tsx "$root/src/cli/main.ts")
(cd "$root" && exec "${sluice[@]}" demo-upstream --port 3000) & pids+=($!)
(cd "$root" && exec "${sluice[@]}" serve --config "$here/sluice.yaml" --no-watch) & pids+=($!)
# Caddy keeps its state under HOME/XDG dirs: point them at a scratch folder.
HOME="$work" XDG_DATA_HOME="$work" XDG_CONFIG_HOME="$work" caddy run --config "$here/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 & pids+=($!)
sleep 1.5
cat <<MSG

Caddy on http://127.0.0.1:8000 asks Sluice (http://127.0.0.1:8082) before every request.
/hello allows 5 requests per minute per client IP; the 6th gets Sluice's 429 Problem Details:

  for i in \$(seq 1 7); do curl -s -i http://127.0.0.1:8000/hello | head -n 1; done
  curl -s -i http://127.0.0.1:8000/hello          # the 429 body and Retry-After, through Caddy
  curl -s http://127.0.0.1:8000/api/hello -H 'x-api-key: demo-key-free-0123456789'   # a consumer

Ctrl-C stops Caddy, Sluice and the demo upstream.
MSG
wait
