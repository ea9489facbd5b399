#!/usr/bin/env bash
# perf/rules.sh — policy cost: hairpin-fwd with N ACL rules per VM (flow
# cache on, and off: every frame through the classifier), with meters +
# 8-class egress, and the same VMs without rules or QoS (`--vms`, the
# baseline of the QoS case), interleaved in one run.
#
#   perf/rules.sh [RUNS] [SECONDS]        (defaults: 3 runs of 3 s)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-3}
cargo build --release --quiet
BIN=target/release/hairpin
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cases="0 vms 100 1000 10000 100nc 1000nc 10000nc qos"
for i in $(seq 1 "$RUNS"); do
  for c in $cases; do
    case $c in
      qos) args="--qos" ;;
      vms) args="--vms" ;;
      *nc) args="--rules ${c%nc} --flow-cache 0" ;;
      *) args="--rules $c" ;;
    esac
    "$BIN" bench hairpin-fwd --seconds "$SECS" $args --json |
      python3 -c "import json,sys; r=json.load(sys.stdin); print(r['mpps'], r['cycles_per_frame'], r['drops'], r['snapshot_build_ms'], r['flow_cache_hit_rate'])" >>"$out/$c"
  done
done
med() { sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
echo "# perf/rules.sh: $RUNS runs x ${SECS}s, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD)"
printf "%-30s %10s %14s %8s %10s %9s  %s\n" case "Mpps(med)" "cycles/frame" "drops" "build ms" "cache hit" "runs (Mpps)"
base=$(cut -d' ' -f1 "$out/0" | med)
for c in $cases; do
  case $c in
    qos) name="0 rules + meters/egress" ;;
    vms) name="0 rules, VMs only" ;;
    *nc) name="${c%nc} rules, flow cache off" ;;
    *) name="$c rules" ;;
  esac
  printf "%-30s %10s %14s %8s %10s %9s  %s\n" "$name" "$(cut -d' ' -f1 "$out/$c" | med)" "$(cut -d' ' -f2 "$out/$c" | med)" \
    "$(cut -d' ' -f3 "$out/$c" | med)" "$(cut -d' ' -f4 "$out/$c" | med)" "$(cut -d' ' -f5 "$out/$c" | med)" "$(cut -d' ' -f1 "$out/$c" | tr '\n' ' ')"
done
echo "ratio to 0 rules: $(for c in vms 100 1000 10000 100nc 1000nc 10000nc qos; do printf '%s=%s ' "$c" "$(awk -v a="$(cut -d' ' -f1 "$out/$c" | med)" -v b="$base" 'BEGIN{printf "%.2f", a/b}')"; done)"
echo "qos / vms-only: $(awk -v a="$(cut -d' ' -f1 "$out/qos" | med)" -v b="$(cut -d' ' -f1 "$out/vms" | med)" 'BEGIN{printf "%.2f", a/b}')"
# Per round (the cases of one round run back to back, so a host that
# changes speed between rounds moves both sides of these ratios together).
paste -d' ' <(cut -d' ' -f1 "$out/0") <(cut -d' ' -f1 "$out/vms") <(cut -d' ' -f1 "$out/100") <(cut -d' ' -f1 "$out/qos") |
  awk '{printf "round %d: 100 rules %.2f Mpps, 100/0 %.2f, qos/0 %.2f, qos/vms-only %.2f\n", NR, $3, $3/$1, $4/$1, $4/$2}'
