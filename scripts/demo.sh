#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds, then starts on
# loopback a small web service, a molerat server and a molerat client that
# exposes the service through the tunnel, fetches a page through it to prove
# it works, and prints what to connect to. Runs until Ctrl-C (or, with
# --once, stops right after the check). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/deps.sh
scripts/build.sh build >/dev/null

work=$(mktemp -d /tmp/molerat-demo.XXXXXX)
pids=()
# Stops everything this script started, within a second: SIGTERM (a
# background job of a script ignores SIGINT, so SIGINT would not do), then
# SIGKILL for whatever is still there after 0.8 s.
cleanup() {
	trap - EXIT INT TERM
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for _ in 1 2 3 4 5 6 7 8; do
		alive=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping"; exit 0' INT TERM

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
svc_port=$(free_port); ctl_port=$(free_port); pub_port=$(free_port)
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')

mkdir -p "$work/www"
echo "Hello from behind the NAT, served through molerat ($(date -u +%FT%TZ))" > "$work/www/index.html"
/usr/bin/python3 -m http.server "$svc_port" --bind 127.0.0.1 --directory "$work/www" >"$work/web.log" 2>&1 &
pids+=($!)

cat > "$work/server.toml" <<EOT
[server]
bind_addr = "127.0.0.1:$ctl_port"
default_token = "$token"

[server.services.web]
bind_addr = "127.0.0.1:$pub_port"
EOT
cat > "$work/client.toml" <<EOT
[client]
remote_addr = "127.0.0.1:$ctl_port"
default_token = "$token"

[client.services.web]
local_addr = "127.0.0.1:$svc_port"
EOT

build/molerat "$work/server.toml" 2>"$work/server.log" &
pids+=($!)
build/molerat "$work/client.toml" 2>"$work/client.log" &
pids+=($!)

# wait (bounded) until a page comes through the tunnel
ok=0
for _ in $(seq 1 50); do
	if got=$(/usr/bin/python3 - "$pub_port" <<'EOP' 2>/dev/null
import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=2).read().decode().strip())
EOP
	); then ok=1; break; fi
	sleep 0.2
done
if [ $ok != 1 ]; then
	echo "demo: the tunnel did not come up; logs:" >&2
	cat "$work/server.log" "$work/client.log" >&2
	exit 1
fi
cat <<EOT

molerat demo is running on loopback:
  local service (behind the "NAT"):  http://127.0.0.1:$svc_port/
  molerat server (for clients):       127.0.0.1:$ctl_port   config: $work/server.toml
  molerat client:                     config: $work/client.toml

  Connect to the tunnelled service:   http://127.0.0.1:$pub_port/
    e.g.  curl http://127.0.0.1:$pub_port/

  Fetched through the tunnel just now: "$got"
EOT
if [ "${1:-}" = "--once" ]; then
	exit 0
fi
echo "Press Ctrl-C to stop."
# returns when molerat's server ends, or at once on Ctrl-C (the trap runs)
wait "${pids[1]}" || true
