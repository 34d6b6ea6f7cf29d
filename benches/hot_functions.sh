#!/usr/bin/env bash
# Writes linker/hot-functions.txt: the functions of the release executable
# that a real service run executes, for the linker to place together (see
# build.rs). Two runs under callgrind of the shipped config/cstowatch.toml
# and rules.toml with the three feeds pointed at local copies
# (tests/fixtures/feeds, served by python3 -m http.server): one with the
# schedule shortened, to cover the service's whole routine (start-up, a
# first poll of each feed with article pages, one failing, polls answered
# 304, digests, the [http] listener scraped), and one with the shipped
# schedule (start-up, a poll, idle). SECS seconds each.
#
#   cargo build --release --bin cstowatch && bash benches/hot_functions.sh
#   cargo build --release --bin cstowatch      # links with the new list
#
# Build exactly as above (`--bin cstowatch`, as `cargo run --release` does):
# a build that includes the examples turns on their dev-dependencies'
# features, which gives our crate different symbol names, and a list made
# from that binary misses half of the one users build (measured: idle RSS
# 14.4 MB instead of 10.9 MB).
#
# Needs valgrind. Regenerate after a dependency upgrade or a large change:
# functions not in the list still work, they are only laid out after it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "$ROOT" && realpath "${BIN:-target/release/cstowatch}")
SECS=${SECS:-50}
OUT=${OUT:-$ROOT/linker/hot-functions.txt}
# shellcheck source=benches/local_feeds.sh
source "$ROOT/benches/local_feeds.sh"

# One run under callgrind in its own directory: $1 names it, $2 is "short"
# (polls every 5 s, a digest every 20 s, the listener scraped every 5 s)
# or "shipped" (the shipped schedule as it is: one poll, then idle).
profile_run() {
    local dir="$WORK/$1" schedule=$2 http_port
    http_port=$(free_port)
    mkdir -p "$dir/config"
    cp "$ROOT/config/rules.toml" "$dir/config/"
    local listen=""
    if [ "$schedule" = short ]; then listen="127.0.0.1:$http_port"; fi
    local_config "$listen" "$schedule" >"$dir/config/cstowatch.toml"

    (cd "$dir" && exec valgrind --tool=callgrind --demangle=no --dump-instr=no \
        --callgrind-out-file="$dir/callgrind.out" \
        "$BIN" --config config/cstowatch.toml run >/dev/null 2>"$dir/log") &
    local service=$!
    PIDS+=("$service")
    for _ in $(seq 1 $((SECS / 5))); do
        sleep 5
        if [ "$schedule" = short ]; then
            curl -fsS "http://127.0.0.1:$http_port/metrics" >/dev/null 2>&1 || true
            curl -fsS "http://127.0.0.1:$http_port/healthz" >/dev/null 2>&1 || true
        fi
    done
    kill -TERM "$service"
    wait "$service" || true
    grep -q 'polled feed=' "$dir/log" || { echo "the $1 run polled nothing; its log:" >&2; cat "$dir/log" >&2; exit 1; }
}

# Both schedules, one after the other: which code runs depends a little on
# timing (which thread finishes a task, and so drops it), and a run under
# callgrind is 50 times slower than the real one, so the shipped schedule's
# own run catches what the short one's timing missed.
profile_run short short
profile_run shipped shipped

# Every function callgrind saw run (its names, compressed as "fn=(id) name"
# on first use, with "'N" marking recursion levels), kept when the
# executable defines it. Sorted: the order inside the list hardly matters
# (all of it runs), and a sorted list changes little when regenerated.
mkdir -p "$(dirname "$OUT")"
python3 - "$BIN" "$OUT" "$WORK/short/callgrind.out" "$WORK/shipped/callgrind.out" <<'EOF'
import re, subprocess, sys
binary, out, *profiles = sys.argv[1:]
defined = {}
for line in subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    fields = line.split()
    if len(fields) == 4 and fields[2] in "tTwW":
        defined[fields[3]] = int(fields[1], 16)
# Functions an earlier list named are kept while the executable still
# defines them: a path that only some runs take (timing) stays in once seen,
# and names a rebuild changed fall out by themselves.
try:
    with open(out) as f:
        seen = {name for name in f.read().split() if name in defined}
except FileNotFoundError:
    seen = set()
for profile in profiles:
    names = {}
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
