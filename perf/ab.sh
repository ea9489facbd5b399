#!/usr/bin/env bash
# perf/ab.sh — alternate two `hairpin bench` commands round by round and
# compare their switch-core cycles per frame (this 2-vCPU VM changes speed
# within minutes, so only figures of the same round are compared).
#
#   perf/ab.sh ROUNDS "COMMAND A" "COMMAND B"
#   e.g. perf/ab.sh 6 "/tmp/hairpin-before bench dpdk-ring-fwd --seconds 1 --mem huge" \
#                     "target/release/hairpin bench dpdk-ring-fwd --seconds 1 --mem huge"
#
# Prints both figures and B/A for each round, then the median of the
# per-round ratios. A command that prints no `cycles/frame` line stops the run.
set -euo pipefail
[ $# -eq 3 ] || { sed -n '2,11p' "$0"; exit 2; }
ROUNDS=$1; A=$2; B=$3
cyc() { bash -c "$1" 2>&1 | awk '/^cycles\/frame/{print $2; f=1} END{exit !f}'; }
ratios=""
for i in $(seq 1 "$ROUNDS"); do
  a=$(cyc "$A") || { echo "round $i: A printed no cycles/frame: $A" >&2; exit 1; }
  b=$(cyc "$B") || { echo "round $i: B printed no cycles/frame: $B" >&2; exit 1; }
  r=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", b/a}')
  echo "round $i: A $a  B $b  B/A $r"
  ratios="$ratios $r"
done
echo "$ratios" | tr ' ' '\n' | grep -v '^$' | sort -g |
  awk '{v[NR]=$1} END{printf "median B/A %.3f over %d rounds\n", (NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2, NR}'
