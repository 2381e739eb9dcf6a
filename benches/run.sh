#!/bin/sh
# Runs the end-to-end benchmark (benches/e2e.rs) the way BENCHMARKS.md does:
# bench profile, at nice 5 so a shared machine stays usable. Arguments go to the
# harness, e.g. `benches/run.sh --quick` or `benches/run.sh --dataset small --reps 5`.
set -eu
cd "$(dirname "$0")/.."
exec nice -n 5 cargo bench --bench e2e -- "$@"
