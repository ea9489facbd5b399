#!/usr/bin/env bash
# perf/ceiling.sh — hairpin next to DPDK testpmd on this machine, in one run.
#
#   perf/ceiling.sh [RUNS] [SECONDS]      (defaults: 3 runs, 3 s windows)
#
# For each memory mode (2 MiB hugepages, 4 KiB pages) and each run, in turn:
#   - testpmd io forwarding between two net_null ports (no work at all: the
#     I/O ceiling), via ../shared/peers/01-testpmd-null-ring.sh when present;
#   - hairpin bench hairpin-fwd (one worker core, ring port, 64-byte hairpin
#     unicast among 1,000 learned MACs).
# Prints medians and the ratio hairpin/testpmd per mode. Needs dpdk-testpmd
# (Debian package dpdk) for the ceiling; hugepages via ./hugepage-setup.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-3}
PEERS=${PEERS:-../shared/peers}
cargo build --release --quiet
BIN=target/release/hairpin
med() { sort -g | awk '{a[NR]=$1} END{if(NR==0){print "NA";exit} m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
free=$(awk '/HugePages_Free/{print $2}' /proc/meminfo)
modes="4k"
[ "${free:-0}" -ge 256 ] && modes="huge 4k"
have_tp=0
command -v dpdk-testpmd >/dev/null && [ -f "$PEERS/01-testpmd-null-ring.sh" ] && have_tp=1
for i in $(seq 1 "$RUNS"); do
  for m in $modes; do
    "$BIN" bench hairpin-fwd --seconds "$SECS" --mem "$m" --json |
      python3 -c "import json,sys; r=json.load(sys.stdin); print(r['mpps'], r['cycles_per_frame'])" >>"$out/hp.$m"
    if [ "$have_tp" = 1 ]; then
      mem="--no-huge -m 1024"; [ "$m" = huge ] && mem="-m 512 --huge-unlink"
      MEM="$mem" RUNS=1 WINDOW="$SECS" CFGS=io bash "$PEERS/01-testpmd-null-ring.sh" 2>/dev/null |
        awk '/null-io/{print $4}' >>"$out/tp.$m" || true
    fi
  done
done
echo "# perf/ceiling.sh: $RUNS runs x ${SECS}s, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), $(nproc) cores"
for m in $modes; do
  hp=$(cut -d' ' -f1 "$out/hp.$m" | med); cyc=$(cut -d' ' -f2 "$out/hp.$m" | med)
  line="mode=$m  hairpin-fwd median ${hp} Mpps (${cyc} cycles/frame)"
  if [ -s "$out/tp.$m" ]; then
    tp=$(med <"$out/tp.$m")
    line="$line  testpmd-io median ${tp} Mpps  ratio $(awk -v a="$hp" -v b="$tp" 'BEGIN{printf "%.2f", a/b}')"
  fi
  echo "$line"
  echo "  hairpin runs: $(cut -d' ' -f1 "$out/hp.$m" | tr '\n' ' ')"
  [ -s "$out/tp.$m" ] && echo "  testpmd runs: $(tr '\n' ' ' <"$out/tp.$m")"
done
