#!/usr/bin/env bash
# A real migration on a fresh machine: starts two throwaway redis-servers on
# free ports, loads sample data of every type (with TTLs), copies it with
# rump, checks the copy, and stops the servers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --no-valkey
cargo build --release --locked --quiet
rump=target/release/rump

dir=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() {
    local port=$1
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$dir" --logfile "$dir/redis-$port.log" --enable-debug-command yes &
    pids+=($!)
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.05; done
    echo "redis-server on $port did not start" >&2; exit 1
}
src=$(free_port); start "$src"
dst=$(free_port); start "$dst"

echo "== loading sample data into the source (127.0.0.1:$src)"
redis-cli -p "$src" debug populate 200000 user 64 >/dev/null
{
    for i in $(seq 1 2000); do
        echo "HSET hash:$i name user$i visits $i"
        echo "RPUSH list:$i a b c"
        echo "ZADD zset:$i 1 one 2 two"
        echo "SADD set:$i x y z"
        echo "XADD stream:$i * field value"
        echo "SET session:$i token$i PX $((60000 + i))"
    done
} | redis-cli -p "$src" >/dev/null
echo "source: $(redis-cli -p "$src" dbsize) keys"

echo "== rump -from redis://127.0.0.1:$src -to redis://127.0.0.1:$dst"
"$rump" -from "redis://127.0.0.1:$src" -to "redis://127.0.0.1:$dst"

echo "== checking the copy"
want=$(redis-cli -p "$src" dbsize); got=$(redis-cli -p "$dst" dbsize)
[ "$want" = "$got" ] || { echo "FAIL: $got keys on the target, $want on the source" >&2; exit 1; }
same() {
    local a b
    a=$(redis-cli -p "$src" "$@" | sort | md5sum); b=$(redis-cli -p "$dst" "$@" | sort | md5sum)
    [ "$a" = "$b" ] || { echo "FAIL: '$*' differs" >&2; exit 1; }
}
same get user:0; same get user:199999; same hgetall hash:7; same lrange list:7 0 -1
same zrange zset:7 0 -1 withscores; same smembers set:7; same xrange stream:7 - +; same get session:7
a=$(redis-cli -p "$src" pexpiretime session:7); b=$(redis-cli -p "$dst" pexpiretime session:7)
[ "$a" = "$b" ] || { echo "FAIL: session:7 expires at $b, not $a" >&2; exit 1; }
echo "OK: $got keys copied; values and absolute TTLs match (session:7 expires at $b ms)"
