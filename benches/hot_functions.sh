#!/usr/bin/env bash
# Writes linker/hot-functions.txt: the functions of the release executable
# that a real service run executes, for the linker to place together (see
# build.rs). The run is the shipped config/cstowatch.toml and rules.toml with
# the three feeds pointed at local copies (tests/fixtures/feeds, served by
# python3 -m http.server) and shortened so that one run under callgrind
# covers the service's whole routine: start-up, a first poll of each feed
# (article pages fetched, one failing), polls answered 304, digests, and the
# [http] listener scraped.
#
#   cargo build --release --bin cstowatch && bash benches/hot_functions.sh
#   cargo build --release --bin cstowatch      # links with the new list
#
# Needs valgrind. Regenerate after a dependency upgrade or a large change:
# functions not in the list still work, they are only laid out after it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "$ROOT" && realpath "${BIN:-target/release/cstowatch}")
SECS=${SECS:-50}
OUT=${OUT:-$ROOT/linker/hot-functions.txt}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
HTTP_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$ROOT/tests/fixtures/feeds" "$PORT" >/dev/null 2>&1 &
PIDS+=($!)
sleep 1

mkdir -p "$WORK/config"
cp "$ROOT/config/rules.toml" "$WORK/config/"
awk -v port="$PORT" -v http_port="$HTTP_PORT" '
    BEGIN { split("wordpress_content_encoded atom rdf", local_feeds, " ") }
    /^\[\[feeds\]\]/ { in_feed = 1 }
    /^\[/ && !/^\[\[feeds\]\]/ { in_feed = 0 }
    in_feed && /^url *=/ { n++; printf "url = \"http://127.0.0.1:%s/%s.xml\"\n", port, local_feeds[n]; next }
    /^interval *=/ { print "interval = \"5s\""; next }
    /^at *= *\[/ { print "every = \"20s\""; next }
    { print }
    END { printf "\n[http]\nlisten = \"127.0.0.1:%s\"\n", http_port }
' "$ROOT/config/cstowatch.toml" >"$WORK/config/cstowatch.toml"

(cd "$WORK" && exec valgrind --tool=callgrind --demangle=no --dump-instr=no \
    --callgrind-out-file="$WORK/callgrind.out" \
    "$BIN" --config config/cstowatch.toml run >/dev/null 2>"$WORK/log") &
SERVICE=$!
PIDS+=("$SERVICE")
for _ in $(seq 1 $((SECS / 5))); do
    sleep 5
    curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" >/dev/null || true
    curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null || true
done
kill -TERM "$SERVICE"
wait "$SERVICE" || true
grep -q 'polled feed=' "$WORK/log" || { echo "the service polled nothing; its log:" >&2; cat "$WORK/log" >&2; exit 1; }

# Every function callgrind saw run (its names, compressed as "fn=(id) name"
# on first use, with "'N" marking recursion levels), kept when the
# executable defines it. Sorted: the order inside the list hardly matters
# (all of it runs), and a sorted list changes little when regenerated.
mkdir -p "$(dirname "$OUT")"
python3 - "$WORK/callgrind.out" "$BIN" "$OUT" <<'EOF'
import re, subprocess, sys
profile, binary, out = sys.argv[1:]
defined = {}
for line in subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    fields = line.split()
    if len(fields) == 4 and fields[2] in "tTwW":
        defined[fields[3]] = int(fields[1], 16)
names, seen = {}, set()
with open(profile) as f:
    for line in f:
        m = re.match(r"^c?fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        ident, name = m.groups()
        if name:
            names[ident] = re.sub(r"'\d+$", "", name)
        name = names.get(ident)
        if name in defined:
            seen.add(name)
with open(out, "w") as f:
    f.write("\n".join(sorted(seen)) + "\n")
total = sum(defined.values())
hot = sum(defined[n] for n in seen)
print(f"{len(seen)} functions, {hot / 1e6:.2f} MB of {total / 1e6:.2f} MB of code, written to {out}")
EOF
