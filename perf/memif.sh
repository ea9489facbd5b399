#!/usr/bin/env bash
# perf/memif.sh — hairpin through a real second process: hairpin (`hairpin run`,
# one worker on CPU 1) is the switch on a net_memif port (role=client); the
# generator is a separate dpdk-testpmd process in flowgen mode on the memif
# server side (CPU 0), as in ../shared/peers/02-testpmd-memif.sh, which this
# script then runs for testpmd io --port-topology=loop on the same harness.
# Frames: 64 B from flowgen's source to its destination (--eth-peer
# 02:00:00:00:00:02, or flowgen's built-in 00:01:02:03:04:01), both
# destinations declared [[vm]] on hairpin's one port with reflective relay and
# the source learned, so every frame is a known-unicast hairpin turn.
#
#   perf/memif.sh [ROUNDS] [SECONDS]   (defaults: 3 rounds of 5 s; no hugepages)
#   MEM=huge: every process on 2 MiB pages (-m 512 --huge-unlink each; reserve
#   768 pages first: ./hugepage-setup --pages 768)
#   SKIP_PEER=1: hairpin only; KEEP=1: keep the logs
#
# The two switches alternate: each round runs hairpin once, then the peer
# script once (RUNS=1), so both see the same state of this (noisy) host.
# Prints, per round, the rate returned to the generator (testpmd Rx-pps over
# SECONDS, the figure the peer script calls "returned-to-gen") and the
# switch-core cycles per frame of each switch, and hairpin / testpmd; at the
# end the medians of both rates and the median of the per-round ratios.
# This host also has a slow mode that comes and goes within minutes (the
# memif copy runs ~3x slower, for either switch), so a round in which only
# one switch was slowed compares the host, not the switches. The last line
# therefore also gives the ratios of the rounds in which both switches ran
# in the same mode (each switch's round counted slow when its rate is below
# 0.6x its best round of the run) and their median.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-5}
PEERS=${PEERS:-../shared/peers}
if [ "${MEM:-4k}" = huge ]; then
  EAL_MEM="-m 512 --huge-unlink"
else
  EAL_MEM="--no-huge -m 1024"
fi
# hairpin's pool is one IOVA-contiguous zone (docs/architecture.md): on
# 2 MiB pages that are not physically adjacent it needs IOVA-as-VA, which a
# memif port (shared memory, no DMA) does not mind.
HP_MEM=$(echo "$EAL_MEM" | sed 's/1024/512/; s/--huge-unlink/--huge-unlink --iova-mode=va/; s/\([^ ]*\)/"\1",/g')
cargo build --release --quiet --features dpdk
BIN=$(pwd)/target/release/hairpin
work=$(mktemp -d /tmp/hpd-memif.XXXXXX)
SOCK=$work/memif.sock
cleanup() { [ "${KEEP:-0}" = 1 ] && echo "logs kept in $work" || rm -rf "$work"; rm -rf /var/run/dpdk/hpdmg /var/run/dpdk/hpdms; }
trap cleanup EXIT
cat >"$work/sw.toml" <<TOML
[switch]
role = "bridge"
workers = [1]
pool_size = 8192
[dpdk]
eal_args = ["-l", "0", $HP_MEM "--no-pci", "--file-prefix=hpdms"]
rx_desc = 1024
tx_desc = 1024
link_wait_ms = 0
[[port]]
name = "hv"
backend = "dpdk:net_memif0,role=client,id=0,socket=$SOCK"
reflective_relay = true
source_guard = false
[[vm]]
name = "b"
mac = "02:00:00:00:00:02"
vlan = 1
port = "hv"
[[vm]]
name = "b-flowgen-default"
mac = "00:01:02:03:04:01"
vlan = 1
port = "hv"
TOML
G_EAL="--lcores=0@1,1@0 $EAL_MEM --no-pci --file-prefix=hpdmg --vdev=net_memif0,role=server,id=0,socket=$SOCK,mac=02:00:00:00:00:01"
echo "# perf/memif.sh $RUNS rounds x ${SECS}s, EAL memory: $EAL_MEM, $(date -u '+%F %H:%M UTC'), $(git rev-parse --short HEAD), load: $(cut -d' ' -f1-3 /proc/loadavg)"
hp_all=""; tp_all=""; ratios=""; pairs=""
for i in $(seq 1 "$RUNS"); do
  { sleep 5; echo start; sleep 2; echo "show port stats all"; sleep "$SECS"; echo "show port stats all"; echo stop; sleep 1; echo quit; } |
    dpdk-testpmd $G_EAL -- -i --port-topology=loop --forward-mode=flowgen --eth-peer=0,02:00:00:00:00:02 \
      >"$work/gen_$i.log" 2>&1 &
  gen=$!
  sleep 2
  # In the work directory with core dumps allowed: a crash leaves its core
  # there (when kernel.core_pattern is a plain file name) and keeps the logs.
  rc=0
  (cd "$work" && ulimit -c unlimited && exec "$BIN" run --config "$work/sw.toml" --seconds "$((SECS + 8))") \
    >"$work/sw_$i.json" 2>"$work/sw_$i.err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "round $i: hairpin failed (exit status $rc):"; tail -5 "$work/sw_$i.err"
    if [ "$rc" -gt 128 ]; then KEEP=1; echo "round $i: killed by signal $((rc - 128)); logs (and any core) kept in $work"; fi
  fi
  wait "$gen" || true
  hp=$(python3 - "$work/sw_$i.json" "$work/gen_$i.log" "$i" <<'PY'
import json, re, sys
try:
    j = json.load(open(sys.argv[1]))
except ValueError:
    print(f"round {sys.argv[3]}: hairpin wrote no counters (its stderr is above)", file=sys.stderr)
    sys.exit(0)
c = j["counters"]
# busy cycles only (as testpmd's --record-core-cycles): the run includes idle
# polling before and after the generator runs
cyc = c["busy_cycles"] / max(c["tx_pkts"], 1)
rx = re.findall(r"Rx-pps:\s+(\d+)", open(sys.argv[2]).read())
mpps = int(rx[-1]) / 1e6 if rx else float("nan")
print(f"round {sys.argv[3]}: hairpin returned {mpps:.3f} Mpps, switch-core busy cycles/frame {cyc:.1f}, "
      f"frames/burst {c['rx_pkts'] / max(c['bursts'], 1):.1f}, forwarded {c['tx_pkts']}, drops {dict((k, v) for k, v in c['drops'].items() if v)}", file=sys.stderr)
print(f"{mpps:.3f}")
PY
)
  [ -n "$hp" ] || continue
  hp_all="$hp_all $hp"
  [ "${SKIP_PEER:-0}" = 1 ] && continue
  # A fresh OUTDIR: the peer script takes its cycles figure from every log in it.
  mkdir -p "$work/peer_$i"
  out=$(cd "$PEERS" && OUTDIR=$work/peer_$i MEM="$EAL_MEM" RUNS=1 WINDOW=$SECS FOREIGN_MAX=${FOREIGN_MAX:-8} bash ./02-testpmd-memif.sh 2>&1 | grep -E '^memif' || true)
  tp=$(echo "$out" | sed -n 's/.*returned-to-gen med: \([0-9.]*\).*/\1/p')
  tc=$(echo "$out" | sed -n 's/.*cycles\/pkt(med): \([0-9.]*\).*/\1/p')
  if [ -z "$tp" ] || [ "$tp" = NA ]; then
    echo "round $i: testpmd io loop gave no figure (foreign load?)"; continue
  fi
  r=$(awk -v a="$hp" -v b="$tp" 'BEGIN{printf "%.3f", a/b}')
  echo "round $i: testpmd io loop returned $tp Mpps, switch-core cycles/frame $tc; hairpin / testpmd = $r"
  tp_all="$tp_all $tp"; ratios="$ratios $r"; pairs="$pairs $hp:$tp"
done
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{if(!NR){print "NA"; exit} printf "%.3f\n", (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
echo "hairpin memif: returned Mpps median $(echo "$hp_all" | med) (runs:$hp_all)"
[ "${SKIP_PEER:-0}" = 1 ] && exit 0
echo "testpmd io loop: returned Mpps median $(echo "$tp_all" | med) (runs:$tp_all)"
echo "hairpin / testpmd per round:$ratios; median $(echo "$ratios" | med)"
same=$(echo "$pairs" | tr ' ' '\n' | grep -v '^$' | awk -F: '
  {h[NR]=$1; t[NR]=$2; if ($1>hb) hb=$1; if ($2>tb) tb=$2}
  END{for (i=1;i<=NR;i++) if ((h[i]<0.6*hb) == (t[i]<0.6*tb)) printf " %.3f", h[i]/t[i]}')
echo "hairpin / testpmd in rounds where both ran in the same host mode:${same:- none}; median $(echo "$same" | med)"
