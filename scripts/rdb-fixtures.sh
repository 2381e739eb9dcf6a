#!/usr/bin/env bash
# Regenerates rdb/tests/fixtures/: the DUMP payloads of every type, in every
# encoding each real server writes, captured from Redis 6.2.14, Redis 7.0
# (Debian), Valkey 8.1.8 and Valkey 9.1.2 (scripts/install-deps.sh installs
# them). One file per key, <server>/<key>.dump, holding the exact payload
# bytes; <server>/VERSION holds the server's --version line.
#
# The data is deterministic (explicit stream IDs, fixed field-expiry
# timestamps), so rdb/tests/fixtures.rs can assert the decoded content
# exactly. Only times the server stamps itself (stream PEL delivery times,
# consumer seen/active times) differ between runs.
#
# Usage: scripts/rdb-fixtures.sh [SERVER...]   (default: all four)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/rdb/tests/fixtures
servers=${RUMP_SERVERS:-$HOME/.cache/rump-servers}
cli=${REDIS_CLI:-redis-cli}

declare -A binary=(
    [redis-6.2]=$servers/redis-6.2.14/redis-server
    [redis-7.0]=${REDIS_SERVER:-/usr/bin/redis-server}
    [valkey-8.1]=$servers/valkey-8.1.8/valkey-server
    [valkey-9.1]=$servers/valkey-9.1.2/valkey-server
)

tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# c ARGS...: one command to the server under capture; an error reply stops
# the script (redis-cli itself exits 0 on one).
c() {
    local reply
    reply=$("$cli" --no-raw -h 127.0.0.1 -p "$port" "$@")
    if [[ $reply == "(error)"* ]]; then
        echo "rdb-fixtures: $1: $reply" >&2
        exit 1
    fi
}

# seq_args PREFIX FROM TO: PREFIX<i> for i in FROM..TO, one per word.
seq_args() { local i; for ((i = $2; i <= $3; i++)); do printf '%s%d ' "$1" "$i"; done; }

populate() {
    local name=$1 major=$2
    # Strings: raw, each integer width, too wide for int32, binary, LZF.
    c SET str_raw "hello world"
    c SET str_empty ""
    c SET str_int8 -7
    c SET str_int16 12345
    c SET str_int32 -2000000000
    c SET str_int64 1234567890123
    python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)))' > "$tmp/binary"
    c -x SET str_binary < "$tmp/binary"
    python3 -c 'import sys; sys.stdout.buffer.write(b"abcdefgh" * 12800)' > "$tmp/lzf"
    c -x SET str_lzf < "$tmp/lzf"
    # HyperLogLog: a string; sparse below hll-sparse-max-bytes, dense above.
    c PFADD hll_sparse a b c d e
    # shellcheck disable=SC2046
    c PFADD hll_dense $(seq_args e 1 5000)

    # Lists: small (one packed node), integers, large (many nodes),
    # compressed nodes, and (7.0+) plain nodes for large elements.
    c RPUSH list_small a b c "hello world"
    c RPUSH list_ints 1 -1 127 128 -4096 4095 32767 -32768 8388607 2147483647 9223372036854775807 -9223372036854775808
    # shellcheck disable=SC2046
    c RPUSH list_large $(seq_args v 0 9999)
    c CONFIG SET list-compress-depth 1
    # shellcheck disable=SC2046
    c RPUSH list_compressed $(seq_args compressible-element-compressible-element- 0 2999)
    c CONFIG SET list-compress-depth 0
    if [ "$major" -ge 7 ]; then
        c DEBUG QUICKLIST-PACKED-THRESHOLD 100
        c RPUSH list_plain small "$(printf 'p%.0s' $(seq 1 200))" tail
        c DEBUG QUICKLIST-PACKED-THRESHOLD 1073741824
    fi

    # Sets: intset, (Valkey/7.2+) listpack, hashtable of strings and of ints.
    c SADD set_intset 1 2 3 -5 100000 5000000000
    c SADD set_small a b c
    # shellcheck disable=SC2046
    c SADD set_large $(seq_args m 0 999)
    # shellcheck disable=SC2046
    c SADD set_large_ints $(seq 0 999)

    # Sorted sets: packed and skiplist, with integer, fractional and
    # infinite scores.
    c ZADD zset_small 1 a 2.5 b -3 c inf pinf -inf ninf 0.1 tenth
    local args=() i
    for ((i = 0; i < 1000; i++)); do args+=("$i.5" "z$i"); done
    c ZADD zset_large "${args[@]}"

    # Hashes: packed and hashtable, with integer values.
    c HSET hash_small a 1 b hello c -300
    args=()
    for ((i = 0; i < 1000; i++)); do args+=("f$i" "v$i"); done
    c HSET hash_large "${args[@]}"

    # Streams (5.0+): same fields as the master entry and different ones,
    # many listpacks, deleted entries, a deleted last entry, an emptied
    # stream, and consumer groups with pending entries.
    c XADD stream_small 1-1 a 1 b 2
    c XADD stream_small 1-2 a 3 b 4
    c XADD stream_small 2-0 other field
    args=()
    for ((i = 1; i <= 1000; i++)); do c XADD stream_large "$i-0" f "v$i" n "$i"; done
    c XADD stream_deleted 1-0 f 1
    c XADD stream_deleted 2-0 f 2
    c XADD stream_deleted 3-0 f 3
    c XADD stream_deleted 4-0 f 4
    c XDEL stream_deleted 2-0
    c XDEL stream_deleted 4-0
    c XADD stream_emptied 5-0 f 1
    c XDEL stream_emptied 5-0
    c XGROUP CREATE stream_group_only g 0 MKSTREAM
    for ((i = 1; i <= 10; i++)); do c XADD stream_groups "$i-0" f "v$i"; done
    c XGROUP CREATE stream_groups g1 0
    c XGROUP CREATE stream_groups g2 '$'
    c XGROUP CREATE stream_groups g3 3-0
    c XREADGROUP GROUP g1 alice COUNT 3 STREAMS stream_groups '>'
    c XREADGROUP GROUP g1 bob COUNT 2 STREAMS stream_groups '>'
    c XACK stream_groups g1 2-0
    c XGROUP CREATECONSUMER stream_groups g1 idle
    c XREADGROUP GROUP g3 carol STREAMS stream_groups '>'
    c XDEL stream_groups 4-0

    # Hashes with field TTLs (Valkey 9.0+): some fields volatile, some not,
    # small and large. Expiry times are fixed, far in the future.
    if [ "$name" = valkey-9.1 ]; then
        c HSET hash_ttl_small a 1 b 2 c 3
        c HPEXPIREAT hash_ttl_small 4102444800000 FIELDS 2 a c
        args=()
        for ((i = 0; i < 300; i++)); do args+=("f$i" "v$i"); done
        c HSET hash_ttl_large "${args[@]}"
        for ((i = 0; i < 300; i += 3)); do
            c HPEXPIREAT hash_ttl_large $((4102444800000 + i)) FIELDS 1 "f$i"
        done
    fi
}

capture() {
    local name=$1 bin=${binary[$1]}
    [ -x "$bin" ] || { echo "rdb-fixtures: no $bin (run scripts/install-deps.sh)" >&2; exit 1; }
    local version major
    version=$("$bin" --version)
    major=$(sed -E 's/.* v=([0-9]+)\..*/\1/' <<<"$version")
    port=$(free_port)
    local dir=$tmp/$name
    mkdir -p "$dir"
    local debug=()
    [ "$major" -ge 7 ] && debug=(--enable-debug-command yes)
    "$bin" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --logfile "$dir/log" "${debug[@]}" &
    pid=$!
    local i
    for ((i = 0; i < 100; i++)); do
        "$cli" -h 127.0.0.1 -p "$port" PING >/dev/null 2>&1 && break
        sleep 0.05
    done
    populate "$name" "$major"
    rm -rf "${out:?}/$name"
    mkdir -p "$out/$name"
    echo "$version" > "$out/$name/VERSION"
    local key
    for key in $("$cli" -h 127.0.0.1 -p "$port" --scan); do
        # redis-cli prints a reply raw, plus one newline, when not on a tty.
        "$cli" -h 127.0.0.1 -p "$port" DUMP "$key" | head -c -1 > "$out/$name/$key.dump"
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=""
    echo "rdb-fixtures: $name: $(ls "$out/$name" | grep -c dump) keys" >&2
}

if [ $# -eq 0 ]; then set -- redis-6.2 redis-7.0 valkey-8.1 valkey-9.1; fi
for name in "$@"; do capture "$name"; done
