#!/bin/bash
# perf/afxdp-lab-ab.sh: A/B of an AF_XDP setting of the hairpin bridge in the lab.
#
#   sudo RATE=450000 W=3 ROUNDS=4 perf/afxdp-lab-ab.sh ring       # rx_ring 2048 vs 8192, paced
#   sudo FRAMES=1500000 ROUNDS=3 perf/afxdp-lab-ab.sh xdp-mode    # xdp_mode native vs generic, unpaced
#
# `hairpin lab up --vms 2 --mode macvtap`: the kernel's macvlan VEPA edge, the
# bridge on AF_XDP, pure polling on CPU 1; the two variants interleaved per
# round. trafgen on CPU 0 sends an exact number of 64-byte UDP frames VM1 ->
# VM2 (ring: RATE x W frames paced at RATE pps; xdp-mode: FRAMES frames as
# fast as it can); VM2 drops them at nft netdev ingress. Per run: frames
# offered (VM1 tx_packets) and delivered (VM2 rx_packets) as rates over
# trafgen's run time, frames lost, the bridge's xdp_native flag and
# rx_ring_drops (lost = rx_ring_drops: every loss was the kernel finding the
# bridge's RX ring full), and the ping RTT median VM1 -> VM2 (300 pings, 2 ms apart).
set -u
cd "$(dirname "$0")/.."
AB=${1:-}
case "$AB" in
  ring) A="rx_ring = 2048"; B="rx_ring = 8192" ;;
  xdp-mode) A='xdp_mode = "native"'; B='xdp_mode = "generic"' ;;
  *) echo "usage: perf/afxdp-lab-ab.sh ring|xdp-mode" >&2; exit 2 ;;
esac
HP=${HP:-$(pwd)/target/release/hairpin}; TG=perf/udp64.trafgen
RATE=${RATE:-450000}; W=${W:-3}; ROUNDS=${ROUNDS:-3}; FRAMES=${FRAMES:-1500000}
[ "$(id -u)" -eq 0 ] || { echo "perf/afxdp-lab-ab.sh: needs root" >&2; exit 1; }
command -v trafgen >/dev/null || { echo "missing trafgen (Debian: netsniff-ng)" >&2; exit 1; }
[ -x "$HP" ] || { echo "build first: cargo build --release ($HP)" >&2; exit 1; }
LABDIR=${HAIRPIN_LAB_DIR:-/run/hairpin-lab}
trap '"$HP" lab down >/dev/null 2>&1; rm -f /tmp/hp-ab.toml' EXIT
"$HP" lab down >/dev/null 2>&1
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) $AB ROUNDS=$ROUNDS RATE=$RATE W=$W FRAMES=$FRAMES"
st() { ip netns exec $1 cat /sys/class/net/hp-eth0/statistics/$2; }
for r in $(seq 1 "$ROUNDS"); do for v in "$A" "$B"; do
  printf '[lab]\nidle_sleep_us = 0\nbridge_core = 1\nbackend = "afxdp"\n%s\n' "$v" > /tmp/hp-ab.toml
  "$HP" lab up --vms 2 --mode macvtap --config /tmp/hp-ab.toml >/dev/null 2>&1 || { echo "lab up failed" >&2; exit 1; }
  ip netns exec hp-vm2 nft -f - <<NFT
table netdev sink {
  chain in { type filter hook ingress device hp-eth0 priority 0; udp dport 9 drop; }
}
NFT
  ip netns exec hp-vm1 ping -c 1 -q 10.77.0.2 >/dev/null
  if [ "$AB" = ring ]; then pace=(-b "${RATE}pps"); n=$((RATE * W)); else pace=(); n=$FRAMES; fi
  t0=$(st hp-vm1 tx_packets); r0=$(st hp-vm2 rx_packets); s0=$(date +%s.%N)
  ip netns exec hp-vm1 taskset -c 0 trafgen --no-sock-mem -Q -C -P 1 --dev hp-eth0 -p --conf $TG "${pace[@]}" -n "$n" \
    -D DMAC=0x02,0x77,0,0,0,2 -D SMAC=0x02,0x77,0,0,0,1 -D SIP=10,77,0,1 -D DIP=10,77,0,2 >/dev/null 2>&1
  s1=$(date +%s.%N); sleep 0.5; t1=$(st hp-vm1 tx_packets); r1=$(st hp-vm2 rx_packets)
  rtt=$(ip netns exec hp-vm1 ping -n -c 300 -i 0.002 10.77.0.2 | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -g |
    awk '{a[NR]=$1*1000} END{printf "%.0f", a[int((NR+1)/2)]}')
  "$HP" lab down >/dev/null 2>&1
  x=$(python3 -c "import json;p=json.load(open('$LABDIR/bridge.json'))['ports']['hv']['backend'];print(p['xdp_native'], p['rx_ring_drops'])")
  awk -v a=$r0 -v b=$r1 -v c=$t0 -v d=$t1 -v s0=$s0 -v s1=$s1 -v v="$v" -v r=$r -v x="$x" -v rtt=$rtt 'BEGIN{w = s1 - s0;
    split(x, f, " "); printf "round %d %-20s offered %.3f Mpps delivered %.3f lost %d xdp_native %s rx_ring_drops %s rtt_med %s us\n",
    r, v, (d-c)/w/1e6, (b-a)/w/1e6, (d-c)-(b-a), f[1], f[2], rtt}'
done; done
