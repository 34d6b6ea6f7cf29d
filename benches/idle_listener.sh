#!/usr/bin/env bash
# Idle CPU and memory of `cstowatch run` with the [http] listener off, on,
# and on while scraped every 15 s: all variants run side by side in the same
# minute (so the machine's noise is shared), REPS of each, each with its own
# install and state. Every instance polls three local feeds once (served by
# python3 -m http.server from tests/fixtures/feeds), then has nothing due for
# the rest of the window: that is the idle being measured.
#
#   cargo build --release && bash benches/idle_listener.sh
#
# Figures: CPU time (utime + stime from /proc/PID/stat) over SECS seconds
# after a warm-up, and VmRSS / VmHWM from /proc/PID/status at the end.
set -euo pipefail

BIN=${BIN:-target/release/cstowatch}
SECS=${SECS:-60}
WARMUP=${WARMUP:-10}
REPS=${REPS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "$ROOT" && realpath "$BIN")
# shellcheck source=benches/local_feeds.sh
source "$ROOT/benches/local_feeds.sh"

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

declare -A PID_OF
for variant in off on scraped; do
    for rep in $(seq 1 "$REPS"); do
        dir="$WORK/$variant-$rep"
        mkdir -p "$dir/config"
        cp "$ROOT/config/rules.toml" "$dir/config/"
        {
            printf '[poll]\ninterval = "15m"\n[digest]\nevery = "6h"\n'
            for feed in wordpress_content_encoded atom rdf; do
                printf '[[feeds]]\nname = "%s"\nurl = "http://127.0.0.1:%s/%s.xml"\n' "$feed" "$PORT" "$feed"
            done
            printf '[state]\npath = "../state/cstowatch.db"\n'
            if [ "$variant" != off ]; then printf '[http]\nlisten = "127.0.0.1:0"\n'; fi
        } >"$dir/config/cstowatch.toml"
        (cd "$dir" && exec "$BIN" --config config/cstowatch.toml run >/dev/null 2>"$dir/log") &
        PID_OF[$variant-$rep]=$!
        PIDS+=($!)
    done
done

sleep "$WARMUP"
# The scraped variants' addresses, as each logs it.
declare -A ADDR_OF
for rep in $(seq 1 "$REPS"); do
    log="$WORK/scraped-$rep/log"
    for _ in $(seq 1 600); do
        grep -q 'listening on http://' "$log" 2>/dev/null && break
        sleep 0.1
    done
    ADDR_OF[$rep]=$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's|.*http://||')
done

declare -A START
for key in "${!PID_OF[@]}"; do START[$key]=$(cpu_ticks "${PID_OF[$key]}"); done
elapsed=0
while [ "$elapsed" -lt "$SECS" ]; do
    for rep in $(seq 1 "$REPS"); do
        curl -fsS "http://${ADDR_OF[$rep]}/metrics" >/dev/null
    done
    sleep 15
    elapsed=$((elapsed + 15))
done

printf '%-8s %-4s %12s %10s %10s %10s\n' variant rep "cpu_ms/${SECS}s" cpu_pct rss_mb hwm_mb
for variant in off on scraped; do
    for rep in $(seq 1 "$REPS"); do
        pid=${PID_OF[$variant-$rep]}
        ticks=$(($(cpu_ticks "$pid") - START[$variant-$rep]))
        ms=$((ticks * 1000 / CLK_TCK))
        awk -v v="$variant" -v r="$rep" -v ms="$ms" -v s="$SECS" \
            -v rss="$(status_kb "$pid" VmRSS)" -v hwm="$(status_kb "$pid" VmHWM)" \
            'BEGIN {printf "%-8s %-4s %12d %9.3f%% %10.1f %10.1f\n", v, r, ms, ms / (s * 10), rss / 1024, hwm / 1024}'
    done
done
