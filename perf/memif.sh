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
#   perf/memif.sh [RUNS] [SECONDS]     (defaults: 3 runs of 5 s; no hugepages)
#   SKIP_PEER=1: hairpin only; KEEP=1: keep the logs
#
# Prints, per run, the rate returned to the generator (testpmd Rx-pps over
# SECONDS, the figure the peer script calls "returned-to-gen") and hairpin's
# switch-core busy cycles per frame; then the peer script's lines for testpmd io.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-5}
PEERS=${PEERS:-../shared/peers}
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
eal_args = ["-l", "0", "--no-huge", "-m", "512", "--no-pci", "--file-prefix=hpdms"]
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
G_EAL="--lcores=0@1,1@0 --no-huge -m 1024 --no-pci --file-prefix=hpdmg --vdev=net_memif0,role=server,id=0,socket=$SOCK,mac=02:00:00:00:00:01"
echo "# perf/memif.sh $RUNS runs x ${SECS}s, $(date -u '+%F %H:%M UTC'), $(git rev-parse --short HEAD), load: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 1 "$RUNS"); do
  { sleep 5; echo start; sleep 2; echo "show port stats all"; sleep "$SECS"; echo "show port stats all"; echo stop; sleep 1; echo quit; } |
    dpdk-testpmd $G_EAL -- -i --port-topology=loop --forward-mode=flowgen --eth-peer=0,02:00:00:00:00:02 \
      >"$work/gen_$i.log" 2>&1 &
  gen=$!
  sleep 2
  "$BIN" run --config "$work/sw.toml" --seconds "$((SECS + 8))" >"$work/sw_$i.json" 2>"$work/sw_$i.err" || {
    echo "run $i: hairpin failed:"; tail -5 "$work/sw_$i.err"; }
  wait "$gen" || true
  python3 - "$work/sw_$i.json" "$work/gen_$i.log" "$SECS" <<'PY'
import json, re, sys
j = json.load(open(sys.argv[1]))
c = j["counters"]
# busy cycles only: the run includes idle polling before and after the generator runs
cyc = c["busy_cycles"] / max(c["tx_pkts"], 1)
g = open(sys.argv[2]).read()
rx = re.findall(r"Rx-pps:\s+(\d+)", g)
print(f"hairpin memif: forwarded {c['tx_pkts']} frames, reflected {c['reflected']}, drops {c['drops_total']}, "
      f"switch-core busy cycles/frame {cyc:.1f}, returned to the generator {int(rx[-1])/1e6 if rx else float('nan'):.3f} Mpps "
      f"(eth imissed {j.get('backend_stats',{}).get('hv',{}).get('eth',{}).get('imissed')}; "
      f"drops {dict((k, v) for k, v in c['drops'].items() if v)})")
PY
done
[ "${SKIP_PEER:-0}" = 1 ] && exit 0
echo "# testpmd io --port-topology=loop on the same harness (peers/02-testpmd-memif.sh, RUNS=$RUNS, WINDOW=$SECS)"
(cd "$PEERS" && RUNS=$RUNS WINDOW=$SECS FOREIGN_MAX=${FOREIGN_MAX:-8} bash ./02-testpmd-memif.sh) 2>&1 | grep -E '^memif' || true
