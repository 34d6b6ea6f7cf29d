# Sourced by the bench scripts that run `cstowatch run` against the three
# fixture feeds (idle_listener.sh, idle_rss.sh, hot_functions.sh): a work
# directory and the processes to stop when the script exits, a local feed
# host, and the shipped config pointed at it. Needs ROOT (the repository);
# sets WORK, PIDS and PORT.

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# A port of our own, found by binding port 0.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The feed host: tests/fixtures/feeds on $PORT.
PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$ROOT/tests/fixtures/feeds" "$PORT" >/dev/null 2>&1 &
PIDS+=($!)
sleep 1

# The shipped config/cstowatch.toml with each [[feeds]] url replaced, in
# order, by a local feed; with an [http] listener on $1 when $1 is not
# empty; with $2 = "short", polls every 5 s and a digest every 20 s
# instead of the shipped schedule.
local_config() {
    awk -v port="$PORT" -v listen="$1" -v schedule="${2:-shipped}" '
        BEGIN { split("wordpress_content_encoded atom rdf", local_feeds, " ") }
        /^\[\[feeds\]\]/ { in_feed = 1 }
        /^\[/ && !/^\[\[feeds\]\]/ { in_feed = 0 }
        in_feed && /^url *=/ { n++; printf "url = \"http://127.0.0.1:%s/%s.xml\"\n", port, local_feeds[n]; next }
        schedule == "short" && /^interval *=/ { print "interval = \"5s\""; next }
        schedule == "short" && /^at *= *\[/ { print "every = \"20s\""; next }
        { print }
        END { if (listen != "") printf "\n[http]\nlisten = \"%s\"\n", listen }
    ' "$ROOT/config/cstowatch.toml"
}
