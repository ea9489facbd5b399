#!/usr/bin/env bash
# perf/dpdk.sh — the cost of the DPDK ethdev layer, in one run, interleaved:
#   * hairpin bench hairpin-fwd      (hairpin's own ring backend)
#   * hairpin bench dpdk-ring-fwd    (the same through a DPDK ring ethdev and
#                                     the mbuf mempool; cargo feature dpdk)
#   * both again with --rules 100    (learning + 100 ACL rules, the issue's target)
#   * both again with --repeat 32    (bursts of one flow, as a single-stream
#                                     generator sends: the traffic Open vSwitch's
#                                     87 cycles were measured with, EMC hits),
#     without and with --rules 100
#   * dpdk-testpmd io and macswap on net_null ports (../shared/peers/01-*.sh)
# in one memory mode: MEM=huge (needs ./hugepage-setup --pages 512) or 4k
# (default; testpmd --no-huge). Switch core 1, generator core 0.
#
#   perf/dpdk.sh [RUNS] [SECONDS]        (defaults: 3 runs of 3 s)
#
# Prints median/min/max of Mpps, cycles per frame on the switch core (busy +
# idle polling, as testpmd's --record-core-cycles counts them) and the ratio
# to testpmd io. PEERS (default ../shared/peers) is where the peer scripts are.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-3}
MEM=${MEM:-4k}
PEERS=${PEERS:-../shared/peers}
cargo build --release --quiet --features dpdk
BIN=target/release/hairpin
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
case "$MEM" in
huge)
  free=$(awk '/HugePages_Free/{print $2}' /proc/meminfo)
  [ "${free:-0}" -ge 512 ] || { echo "MEM=huge needs 512 free 2M hugepages (./hugepage-setup --pages 768)" >&2; exit 1; }
  hmem=huge; tpmem="-m 512 --huge-unlink" ;;
4k) hmem=4k; tpmem="" ;;
*) echo "MEM is huge or 4k" >&2; exit 1 ;;
esac
for i in $(seq 1 "$RUNS"); do
  "$BIN" bench hairpin-fwd --seconds "$SECS" --mem "$hmem" --json >>"$out/ring.jsonl"
  "$BIN" bench dpdk-ring-fwd --seconds "$SECS" --mem "$hmem" --json 2>/dev/null >>"$out/dpdk.jsonl"
  "$BIN" bench hairpin-fwd --seconds "$SECS" --mem "$hmem" --rules 100 --json >>"$out/ring100.jsonl"
  "$BIN" bench dpdk-ring-fwd --seconds "$SECS" --mem "$hmem" --rules 100 --json 2>/dev/null >>"$out/dpdk100.jsonl"
  "$BIN" bench hairpin-fwd --seconds "$SECS" --mem "$hmem" --repeat 32 --json >>"$out/ring1f.jsonl"
  "$BIN" bench dpdk-ring-fwd --seconds "$SECS" --mem "$hmem" --repeat 32 --json 2>/dev/null >>"$out/dpdk1f.jsonl"
  "$BIN" bench hairpin-fwd --seconds "$SECS" --mem "$hmem" --rules 100 --repeat 32 --json >>"$out/ring100_1f.jsonl"
  "$BIN" bench dpdk-ring-fwd --seconds "$SECS" --mem "$hmem" --rules 100 --repeat 32 --json 2>/dev/null >>"$out/dpdk100_1f.jsonl"
done
med() { sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f (min %.2f, max %.2f, n %d)", m, a[1], a[NR], NR}'; }
medv() { sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
field() { python3 -c "import json,sys; [print(json.loads(l)['$1']) for l in sys.stdin]"; }
echo "# perf/dpdk.sh MEM=$MEM, $RUNS runs x ${SECS}s, $(date -u '+%F %H:%M UTC'), $(git rev-parse --short HEAD), load: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in ring dpdk ring100 dpdk100 ring1f dpdk1f ring100_1f dpdk100_1f; do
  f="$out/$s.jsonl"
  echo "hairpin $s (pool memory: $(field mem <"$f" | sort -u | tr '\n' ' '))"
  echo "  Mpps          $(field mpps <"$f" | med)"
  echo "  cycles/frame  $(field cycles_per_frame <"$f" | med)"
  echo "  drops         $(field drops <"$f" | med)"
done
echo "# testpmd on net_null (peers/01-testpmd-null-ring.sh, CFGS='io macswap', RUNS=$RUNS, WINDOW=$SECS)"
peer=$( (cd "$PEERS" && RUNS=$RUNS WINDOW=$SECS CFGS="io macswap" MEM="${tpmem:---no-huge -m 1024}" FOREIGN_MAX=${FOREIGN_MAX:-8} bash ./01-testpmd-null-ring.sh) 2>&1 | tee "$out/peer.txt" | grep -E '^null-' || true)
echo "$peer"
io_cyc=$(awk '/^null-io/{for(i=1;i<=NF;i++) if($i=="cycles/pkt(med):") print $(i+1)}' <<<"$peer")
if [ -n "$io_cyc" ] && [ "$io_cyc" != NA ]; then
  for s in ring dpdk ring100 dpdk100 ring1f dpdk1f ring100_1f dpdk100_1f; do
    c=$(field cycles_per_frame <"$out/$s.jsonl" | medv)
    awk -v s="$s" -v c="$c" -v io="$io_cyc" 'BEGIN{printf "ratio %-8s cycles/frame / testpmd io = %.1f / %.1f = %.2fx\n", s, c, io, c/io}'
  done
fi
