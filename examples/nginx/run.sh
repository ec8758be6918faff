#!/usr/bin/env bash
# nginx (auth_request) -> Sluice forward-auth -> the demo upstream, all on loopback.
# Starts the three, prints the proxy URL and a curl loop, stops everything on Ctrl-C.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "nginx not found: installing Debian's nginx" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq nginx; else sudo apt-get update -qq && sudo apt-get install -y -qq nginx; fi
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
work="$(mktemp -d)"
mkdir -p "$work/tmp"
cp "$here/nginx.conf" "$work/nginx.conf"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM

sluice=(node "$root/dist/cli/main.js")
[ -f "$root/dist/cli/main.js" ] || sluice=(node --import tsx "$root/src/cli/main.ts")
(cd "$root" && exec "${sluice[@]}" demo-upstream --port 3000) & pids+=($!)
(cd "$root" && exec "${sluice[@]}" serve --config "$here/sluice.yaml" --no-watch) & pids+=($!)
"$NGINX" -p "$work" -c "$work/nginx.conf" -g 'daemon off;' & pids+=($!)
sleep 1.5
cat <<MSG

nginx on http://127.0.0.1:8000 asks Sluice (http://127.0.0.1:8082) before every request.
/hello allows 5 requests per minute per client IP; the 6th gets Sluice's 429 Problem Details:

  for i in \$(seq 1 7); do curl -s -i http://127.0.0.1:8000/hello | head -n 1; done
  curl -s -i http://127.0.0.1:8000/hello          # the 429 body and Retry-After, through nginx
  curl -s http://127.0.0.1:8000/api/hello -H 'x-api-key: demo-key-free-0123456789'   # a consumer

Ctrl-C stops nginx, Sluice and the demo upstream.
MSG
wait
