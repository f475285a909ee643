#!/usr/bin/env bash
# Smoke test of `make run`: start it on a scratch database and a free port, wait for /readyz,
# make one match with a fresh platform key, then stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
export DUIJIE_DATABASE_URL="sqlite:///$scratch/smoke.db"
export DUIJIE_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# make run in a process group of its own, so the server it starts is stopped with it and nothing else is.
setsid make run >"$scratch/run.log" 2>&1 &
pid=$!
trap 'kill -- -$pid 2>/dev/null || true; sleep 1; kill -9 -- -$pid 2>/dev/null || true; rm -rf "$scratch"' EXIT
for _ in $(seq 1 180); do
  curl -fsS "http://127.0.0.1:$DUIJIE_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { cat "$scratch/run.log"; echo "smoke: make run exited early"; exit 1; }
  sleep 1
done
curl -fsS "http://127.0.0.1:$DUIJIE_PORT/readyz"; echo
key=$(.venv/bin/duijie keys create --role platform --note smoke | tail -n 1)
answer=$(curl -fsS -X POST "http://127.0.0.1:$DUIJIE_PORT/v1/match" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' -d '{"need_id": "N0001", "k": 3}')
echo "$answer" | python3 -c 'import json,sys; s=json.load(sys.stdin)["suggestions"]; assert s, "no suggestions"; print("smoke: match gave", len(s), "suggestions, best", s[0]["resource_id"], s[0]["score"])'
grep -q "pairs" "$scratch/run.log" && echo "smoke: demo batch summary printed"
