#!/usr/bin/env bash
# perf/bench.sh — run `hairpin bench` scenarios several times, interleaving
# memory modes, and print the median, min and max of each figure.
#
#   perf/bench.sh [RUNS] [SECONDS]        (defaults: 5 runs of 3 s)
#
# Memory modes: "huge" needs reserved 2 MiB hugepages (./hugepage-setup
# --pages 512); when none are free that mode is skipped and said so. The
# generator runs on core 0 and the switch worker on core 1 (see BenchOpts).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
SECS=${2:-3}
cargo build --release --quiet
BIN=target/release/hairpin
modes="4k thp"
free=$(awk '/HugePages_Free/{print $2}' /proc/meminfo)
if [ "${free:-0}" -ge 64 ]; then modes="huge $modes"; else echo "# hugepages: none free, 'huge' mode skipped (./hugepage-setup --pages 512)"; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for i in $(seq 1 "$RUNS"); do
  for m in $modes; do
    "$BIN" bench hairpin-fwd --seconds "$SECS" --mem "$m" --json >>"$out/$m.jsonl"
  done
done
med() { sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f (min %.2f, max %.2f, n %d)", m, a[1], a[NR], NR}'; }
field() { python3 -c "import json,sys; [print(json.loads(l)['$1']) for l in sys.stdin]"; }
echo "# hairpin bench hairpin-fwd, $RUNS runs x ${SECS}s per mode, $(date -u +%F), $(git rev-parse --short HEAD)"
for m in $modes; do
  f="$out/$m.jsonl"
  got=$(field mem <"$f" | sort -u | tr '\n' ' ')
  echo "mode=$m (pool memory: $got)"
  echo "  Mpps          $(field mpps <"$f" | med)"
  echo "  cycles/frame  $(field cycles_per_frame <"$f" | med)"
  echo "  drops         $(field drops <"$f" | med)"
done
