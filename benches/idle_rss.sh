#!/usr/bin/env bash
# Idle resident memory of `cstowatch run` with the shipped config: one or more
# builds side by side in the same minute (so the machine's noise is shared),
# REPS instances of each with the `[http]` listener off (the shipped default)
# and on. Every instance has its own install and state, runs the shipped
# config/cstowatch.toml and rules.toml with the three feed URLs pointed at
# local copies (tests/fixtures/feeds, served by python3 -m http.server),
# polls them once and then has nothing due: that is the idle being measured.
#
#   cargo build --release --bin cstowatch
#   cp target/release/cstowatch /tmp/cstowatch-before     # build, then the change
#   BINS="before=/tmp/cstowatch-before after=target/release/cstowatch" REPS=3 \
#       bash benches/idle_rss.sh
#
# Figures, from /proc/PID/smaps_rollup at AT seconds after start (default
# "10 60"): Rss, Anonymous, and file-backed (Rss - Anonymous: pages of the
# executable and shared libraries), plus the thread count and the CPU time
# between the first and the last sample. Medians over REPS per build and
# variant. With SMAPS=1, one instance of each build also has its resident
# pages broken down by mapping at the last sample (the executable's segments,
# [heap], thread stacks, other anonymous mappings such as malloc arenas).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BINS=${BINS:-"release=target/release/cstowatch"}
REPS=${REPS:-3}
AT=${AT:-"10 60"}
VARIANTS=${VARIANTS:-"off on"}
SMAPS=${SMAPS:-0}
# shellcheck source=benches/local_feeds.sh
source "$ROOT/benches/local_feeds.sh"

declare -A PID_OF
KEYS=()
for spec in $BINS; do
    label=${spec%%=*}
    bin=$(cd "$ROOT" && realpath "${spec#*=}")
    for variant in $VARIANTS; do
        for rep in $(seq 1 "$REPS"); do
            key="$label/$variant/$rep"
            dir="$WORK/$label-$variant-$rep"
            mkdir -p "$dir/config"
            cp "$ROOT/config/rules.toml" "$dir/config/"
            listen=""
            if [ "$variant" = on ]; then listen="127.0.0.1:0"; fi
            local_config "$listen" >"$dir/config/cstowatch.toml"
            (cd "$dir" && exec "$bin" --config config/cstowatch.toml run >/dev/null 2>"$dir/log") &
            PID_OF[$key]=$!
            PIDS+=($!)
            KEYS+=("$key")
        done
    done
done
START=$(date +%s.%N)

rollup_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/smaps_rollup"; }
status_field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Resident kB by kind of mapping: the executable's own segments, shared
# libraries, [heap], [stack], thread stacks (an anonymous mapping right after
# a guard page), other anonymous mappings (malloc arenas, large allocations).
smaps_breakdown() {
    awk -v exe="$2" '
        /^[0-9a-f]+-[0-9a-f]+ / {
            perms = $2; path = $6
            if (path == exe) kind = "exe " perms
            else if (path ~ /^\//) kind = "lib " path
            else if (path == "[heap]" || path == "[stack]") kind = path
            else if (path ~ /^\[/) kind = path
            else if (previous_guard && perms == "rw-p") kind = "anon: thread stacks"
            else kind = "anon: other"
            previous_guard = (perms == "---p" && path == "")
            mappings[kind]++
            next
        }
        $1 == "Rss:" { rss[kind] += $2 }
        $1 == "Anonymous:" { anon[kind] += $2 }
        END {
            for (k in rss) if (rss[k] > 0) printf "  %-50s %4d maps %8d kB rss %8d kB anon\n", k, mappings[k], rss[k], anon[k]
        }
    ' "/proc/$1/smaps" | sort -k1,1 -k2,2
}

declare -A RSS ANON FILE THREADS CPU0 CPU
for at in $AT; do
    now=$(date +%s.%N)
    wait_s=$(awk -v s="$START" -v n="$now" -v at="$at" 'BEGIN {d = s + at - n; print (d > 0 ? d : 0)}')
    sleep "$wait_s"
    for key in "${KEYS[@]}"; do
        pid=${PID_OF[$key]}
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "instance $key (pid $pid) exited; its log:" >&2
            cat "$WORK/${key//\//-}/log" >&2
            exit 1
        fi
        rss=$(rollup_kb "$pid" Rss)
        anon=$(rollup_kb "$pid" Anonymous)
        RSS[$key/$at]=$rss
        ANON[$key/$at]=$anon
        FILE[$key/$at]=$((rss - anon))
        THREADS[$key/$at]=$(status_field "$pid" Threads)
        ticks=$(cpu_ticks "$pid")
        [ -z "${CPU0[$key]:-}" ] && CPU0[$key]=$ticks
        CPU[$key]=$((ticks - CPU0[$key]))
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
mb() { awk -v kb="$1" 'BEGIN {printf "%.1f", kb / 1024}'; }

CLK_TCK=$(getconf CLK_TCK)
first_at=${AT%% *}
last_at=${AT##* }
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %-4s %4s  %-22s %-22s %-22s %-10s %s\n' build http at_s \
    "rss MB (each)" "anon MB (each)" "file MB (each)" threads "cpu ms ${first_at}-${last_at}s"
for spec in $BINS; do
    label=${spec%%=*}
    for variant in $VARIANTS; do
        for at in $AT; do
            r="" a="" f="" t="" c=""
            for rep in $(seq 1 "$REPS"); do
                key="$label/$variant/$rep"
                r+="$(mb "${RSS[$key/$at]}") "
                a+="$(mb "${ANON[$key/$at]}") "
                f+="$(mb "${FILE[$key/$at]}") "
                t+="${THREADS[$key/$at]} "
                c+="$((CPU[$key] * 1000 / CLK_TCK)) "
            done
            printf '%-10s %-4s %4s  %-22s %-22s %-22s %-10s %s\n' "$label" "$variant" "$at" \
                "$(echo "$r" | median) ($r)" "$(echo "$a" | median) ($a)" "$(echo "$f" | median) ($f)" \
                "$(echo "$t" | median)" "$([ "$at" = "$last_at" ] && echo "$c")"
        done
    done
done

if [ "$SMAPS" = 1 ]; then
    for spec in $BINS; do
        label=${spec%%=*}
        bin=$(cd "$ROOT" && realpath "${spec#*=}")
        first_variant=${VARIANTS%% *}
        echo "resident pages by mapping at ${last_at} s: $label, http $first_variant, instance 1"
        smaps_breakdown "${PID_OF[$label/$first_variant/1]}" "$bin"
    done
fi
