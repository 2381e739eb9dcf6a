#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests of every crate,
# against real redis-server and valkey-server processes the tests start
# themselves. Installs those servers first if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec cargo test --workspace --locked "$@"
