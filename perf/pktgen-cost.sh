#!/usr/bin/env bash
# perf/pktgen-cost.sh — what `hairpin pktgen` costs, in one run:
#   1. the generator alone, ring port to ring port, 64-byte frames, every
#      frame also received and accounted on the generator's core, with and
#      without timestamps (target: >= 30 Mpps with sequence numbers and
#      timestamps);
#   2. what timestamping costs the measured path: the switch's busy cycles
#      per frame (docs/configs/pktgen-bridge.toml, one hairpinned stream) with and without timestamps, in interleaved pairs
#      (target: <= 5 %).
#
#   perf/pktgen-cost.sh [RUNS] [RATE]      (defaults: 5 runs, 10Mpps)
#
# The switch never reads a timestamp, so any difference comes from the
# generator: a faster generator loop (timestamps off) releases the paced
# frames in smaller bursts, and smaller bursts cost the switch more cycles
# per frame. At RATE=max the switch's cycles swing with the loss instead.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
RATE=${2:-10Mpps}
cargo build --release --quiet
BIN=${BIN:-target/release/hairpin}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
steal() { awk '/^cpu /{print $9}' /proc/stat; }
s0=$(steal)
for i in $(seq 1 "$RUNS"); do
  for ts in on off; do
    flag=""
    [ "$ts" = off ] && flag="--no-timestamps"
    "$BIN" pktgen gen-alone --seconds 2 --same-core $flag --json |
      python3 -c "import json,sys; r=json.load(sys.stdin); print(r['rx_mpps'])" >>"$out/gen-$ts"
    "$BIN" pktgen --config docs/configs/pktgen-bridge.toml --stream src=a,dst=b,size=64 \
      --rate "$RATE" --duration 2 --quiet --json $flag |
      python3 -c "import json,sys; r=json.load(sys.stdin); s=r['switch']; print(s['cycles_per_frame'], r['lost'] / max(r['offered'], 1) * 100, r['received'] / r['seconds'] / 1e6)" >>"$out/sw-$ts"
  done
done
s1=$(steal)
med() { sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
echo "# perf/pktgen-cost.sh: $RUNS runs, rate $RATE, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), steal $((s1 - s0)) ticks"
g_on=$(med <"$out/gen-on")
g_off=$(med <"$out/gen-off")
echo "generator alone, 64 B, TX+RX on one core: timestamps on $g_on Mpps (runs: $(tr '\n' ' ' <"$out/gen-on")), off $g_off Mpps (runs: $(tr '\n' ' ' <"$out/gen-off"))"
c_on=$(cut -d' ' -f1 "$out/sw-on" | med)
c_off=$(cut -d' ' -f1 "$out/sw-off" | med)
echo "switch busy cycles/frame at $RATE: timestamps on $c_on (runs: $(cut -d' ' -f1 "$out/sw-on" | tr '\n' ' ')), off $c_off (runs: $(cut -d' ' -f1 "$out/sw-off" | tr '\n' ' '))"
echo "delivered Mpps: on $(cut -d' ' -f3 "$out/sw-on" | tr '\n' ' '), off $(cut -d' ' -f3 "$out/sw-off" | tr '\n' ' ')"
echo "loss %: on $(cut -d' ' -f2 "$out/sw-on" | tr '\n' ' '), off $(cut -d' ' -f2 "$out/sw-off" | tr '\n' ' ')"
awk -v a="$c_on" -v b="$c_off" 'BEGIN{printf "timestamping cost on the measured path: %+.1f %% (median on / median off - 1)\n", (a / b - 1) * 100}'
