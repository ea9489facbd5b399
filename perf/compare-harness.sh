#!/usr/bin/env bash
# perf/compare-harness.sh: hairpin (VEPA edge + reflective-relay bridge) vs
# local switching (VEB edge) vs VEB edge with the same ACLs, on ring ports.
# Writes perf/reports/<UTC date>/{report.md,results.json,*.svg}.
#
#   perf/compare-harness.sh            # the full matrix (7 sizes x 0/100/1000 rules, 3 runs per point)
#   perf/compare-harness.sh --quick    # smoke run in seconds (CI)
#   perf/compare-harness.sh --vm-sweep 2,16,60,128,256 --rule-sweep 1,10,100,1000,10000
#
# Extra arguments go to `hairpin pktgen harness` (see --help there).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git diff --quiet HEAD 2>/dev/null; then commit="$commit+dirty"; fi
out=${OUT_DIR:-perf/reports/$(date -u +%Y-%m-%d)}
cmd="perf/compare-harness.sh $*"
exec ./target/release/hairpin pktgen harness --out-dir "$out" \
    --command "$cmd" --commit "$commit" "$@"
