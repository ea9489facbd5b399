#!/bin/bash
# perf/afxdp-xdp-mode.sh: the hairpin bridge's XDP attach mode on veth, A/B.
#
#   sudo ROUNDS=3 FRAMES=1500000 perf/afxdp-xdp-mode.sh
#
# `hairpin lab up --vms 2 --mode macvtap` (the kernel's macvlan VEPA edge, the
# bridge on AF_XDP with the lab's ring, pure polling on CPU 1), with
# `[lab] xdp_mode = "native"` and `"generic"` interleaved per round. trafgen
# on CPU 0 sends FRAMES 64-byte UDP frames VM1 -> VM2 as fast as it can; VM2
# drops them at nft netdev ingress. Per run: the rate trafgen offered (VM1
# tx_packets over trafgen's run time), the rate delivered (VM2 rx_packets),
# frames lost, the bridge's xdp_native flag and rx_ring_drops, and the ping
# RTT median VM1 -> VM2 (300 pings, 2 ms apart).
set -u
cd "$(dirname "$0")/.."
HP=${HP:-$(pwd)/target/release/hairpin}; TG=perf/udp64.trafgen
ROUNDS=${ROUNDS:-3}; FRAMES=${FRAMES:-1500000}
[ "$(id -u)" -eq 0 ] || { echo "perf/afxdp-xdp-mode.sh: needs root" >&2; exit 1; }
command -v trafgen >/dev/null || { echo "missing trafgen (Debian: netsniff-ng)" >&2; exit 1; }
[ -x "$HP" ] || { echo "build first: cargo build --release ($HP)" >&2; exit 1; }
LABDIR=${HAIRPIN_LAB_DIR:-/run/hairpin-lab}
trap '"$HP" lab down >/dev/null 2>&1; rm -f /tmp/hp-xdpmode-*.toml' EXIT
"$HP" lab down >/dev/null 2>&1
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) ROUNDS=$ROUNDS FRAMES=$FRAMES"
st() { ip netns exec $1 cat /sys/class/net/hp-eth0/statistics/$2; }
for r in $(seq 1 "$ROUNDS"); do for m in native generic; do
  printf '[lab]\nidle_sleep_us = 0\nbridge_core = 1\nbackend = "afxdp"\nxdp_mode = "%s"\n' $m > /tmp/hp-xdpmode-$m.toml
  "$HP" lab up --vms 2 --mode macvtap --config /tmp/hp-xdpmode-$m.toml >/dev/null 2>&1 || { echo "lab up failed" >&2; exit 1; }
  ip netns exec hp-vm2 nft -f - <<NFT
table netdev sink {
  chain in { type filter hook ingress device hp-eth0 priority 0; udp dport 9 drop; }
}
NFT
  ip netns exec hp-vm1 ping -c 1 -q 10.77.0.2 >/dev/null
  t0=$(st hp-vm1 tx_packets); r0=$(st hp-vm2 rx_packets); s0=$(date +%s.%N)
  ip netns exec hp-vm1 taskset -c 0 trafgen --no-sock-mem -Q -C -P 1 --dev hp-eth0 -p --conf $TG -n "$FRAMES" \
    -D DMAC=0x02,0x77,0,0,0,2 -D SMAC=0x02,0x77,0,0,0,1 -D SIP=10,77,0,1 -D DIP=10,77,0,2 >/dev/null 2>&1
  s1=$(date +%s.%N); sleep 0.5; t1=$(st hp-vm1 tx_packets); r1=$(st hp-vm2 rx_packets)
  rtt=$(ip netns exec hp-vm1 ping -n -c 300 -i 0.002 10.77.0.2 | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -g |
    awk '{a[NR]=$1*1000} END{printf "%.0f", a[int((NR+1)/2)]}')
  "$HP" lab down >/dev/null 2>&1
  x=$(python3 -c "import json;p=json.load(open('$LABDIR/bridge.json'))['ports']['hv']['backend'];print(p['xdp_native'], p['rx_ring_drops'])")
  awk -v a=$r0 -v b=$r1 -v c=$t0 -v d=$t1 -v s0=$s0 -v s1=$s1 -v m=$m -v r=$r -v x="$x" -v rtt=$rtt 'BEGIN{w = s1 - s0;
    split(x, f, " "); printf "round %d %-8s offered %.3f Mpps delivered %.3f lost %d xdp_native %s rx_ring_drops %s rtt_med %s us\n",
    r, m, (d-c)/w/1e6, (b-a)/w/1e6, (d-c)-(b-a), f[1], f[2], rtt}'
done; done
