#!/bin/bash
# perf/afxdp-rx-ring.sh: the hairpin bridge's AF_XDP RX ring depth, A/B.
#
#   sudo RATE=450000 W=3 ROUNDS=4 perf/afxdp-rx-ring.sh
#
# `hairpin lab up --vms 2 --mode macvtap` (the kernel's macvlan VEPA edge, the
# bridge on AF_XDP, pure polling on CPU 1) with the bridge's ports at
# rx_ring = 2048 (the afxdp default) and 8192 (the lab's bridge default),
# interleaved per round. trafgen on CPU 0 sends exactly RATE x W 64-byte UDP
# frames VM1 -> VM2, paced; VM2 drops them at nft netdev ingress. Per run:
# frames offered (VM1 tx_packets), delivered (VM2 rx_packets), lost, and the
# bridge's rx_ring_drops (from its final counters): lost = rx_ring_drops means
# every loss was the kernel finding the bridge's RX ring full.
set -u
cd "$(dirname "$0")/.."
HP=${HP:-$(pwd)/target/release/hairpin}; TG=perf/udp64.trafgen
RATE=${RATE:-450000}; W=${W:-3}; ROUNDS=${ROUNDS:-4}
[ "$(id -u)" -eq 0 ] || { echo "perf/afxdp-rx-ring.sh: needs root" >&2; exit 1; }
command -v trafgen >/dev/null || { echo "missing trafgen (Debian: netsniff-ng)" >&2; exit 1; }
[ -x "$HP" ] || { echo "build first: cargo build --release ($HP)" >&2; exit 1; }
LABDIR=${HAIRPIN_LAB_DIR:-/run/hairpin-lab}
trap '"$HP" lab down >/dev/null 2>&1; rm -f /tmp/hp-ring-*.toml' EXIT
"$HP" lab down >/dev/null 2>&1
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) RATE=$RATE W=$W ROUNDS=$ROUNDS"
st(){ ip netns exec $1 cat /sys/class/net/hp-eth0/statistics/$2; }
for r in $(seq 1 "$ROUNDS"); do for ring in 2048 8192; do
  printf '[lab]\nidle_sleep_us = 0\nbridge_core = 1\nbackend = "afxdp"\nrx_ring = %d\n' $ring > /tmp/hp-ring-$ring.toml
  "$HP" lab up --vms 2 --mode macvtap --config /tmp/hp-ring-$ring.toml >/dev/null 2>&1 || { echo "lab up failed" >&2; exit 1; }
  ip netns exec hp-vm2 nft -f - <<NFT
table netdev sink {
  chain in { type filter hook ingress device hp-eth0 priority 0; udp dport 9 drop; }
}
NFT
  ip netns exec hp-vm1 ping -c 1 -q 10.77.0.2 >/dev/null
  t0=$(st hp-vm1 tx_packets); r0=$(st hp-vm2 rx_packets); n=$((RATE*W))
  ip netns exec hp-vm1 taskset -c 0 trafgen --no-sock-mem -Q -C -P 1 --dev hp-eth0 -p --conf $TG -b ${RATE}pps -n $n \
    -D DMAC=0x02,0x77,0,0,0,2 -D SMAC=0x02,0x77,0,0,0,1 -D SIP=10,77,0,1 -D DIP=10,77,0,2 >/dev/null 2>&1
  sleep 0.5; t1=$(st hp-vm1 tx_packets); r1=$(st hp-vm2 rx_packets)
  "$HP" lab down >/dev/null 2>&1
  drops=$(python3 -c "import json;d=json.load(open('$LABDIR/bridge.json'));print(sum(p.get('backend',{}).get('rx_ring_drops',0) for p in d['ports'].values()))")
  echo "round $r ring $ring offered $((t1-t0)) delivered $((r1-r0)) lost $((t1-t0-r1+r0)) bridge_rx_ring_drops $drops"
done; done
