#!/bin/bash
# perf/lab-vs-kernel.sh: the `hairpin lab` topology against the Linux kernel
# doing the same jobs, on veth on this machine, interleaved A/B rounds.
#
#   sudo perf/lab-vs-kernel.sh            # RUNS=3 WINDOW=3 by default
#   sudo RUNS=1 WINDOW=1 HAIRPIN_LAB_PREFIX=hpx- perf/lab-vs-kernel.sh   # a quick check
#
# Topologies (all namespaces hp-*, kernel ones hp-k*; $HAIRPIN_LAB_PREFIX renames
# them, and then the lab's directory is $HAIRPIN_LAB_DIR or /tmp/hairpin-lab-PREFIX):
#   K-vepa   kernel macvlan (vepa) edge on hp-kup -> veth -> Linux bridge, hairpin on
#   H-vepa   same kernel macvlan edge (lab --mode macvtap) -> veth -> hairpin bridge
#            on AF_PACKET ports ([lab] backend = "afpacket")
#   H-vepa-xdp  as H-vepa, the bridge's ports on AF_XDP ([lab] backend = "afxdp",
#            the lab's default)
#   K-veb    two VM veths on a plain Linux bridge (local switching)
#   H-edge-vepa / H-edge-veb   hairpin's own edge (lab --mode vepa / veb) + hairpin bridge
#                              (the lab's default backend: AF_XDP)
#   K-vepa-acl / H-vepa-acl    as K-vepa / H-vepa with 100 non-matching ACL rules
#                              (nft bridge forward chain / a hairpin policy on VM1)
#   H-vepa-paced / H-vepa-acl-paced   H-vepa / H-vepa-acl offered a PACED rate: the
#        rate K-vepa delivered in the same round (trafgen -b Npps). The target "hairpin
#        forwards everything the generator offers" means delivered = offered here;
#        trafgen sends a fixed count (rate x WINDOW, -n) and both interface counters
#        are read before and after it, so loss = 1 - delivered/offered is exact
#        (frame counts), and hairpin's own losses (kernel RX ring
#        drops, tx_full, drops) are in the lost column. trafgen paces with one
#        sendto() per frame (no mmap ring), so on a loaded machine it may offer less
#        than asked: offered/target is printed too.
#   H-vepa-xdp-paced / H-vepa-xdp-acl-paced   the same two paced runs with the
#        bridge's ports on AF_XDP
# Measures per topology and round:
#   pps  trafgen (netsniff-ng), 64-byte UDP VM1 -> VM2, one sender pinned to CPU 0;
#        delivered = rx_packets delta on VM2's interface over WINDOW s, offered =
#        tx_packets delta on VM1's; receivers drop UDP port 9 at nft netdev ingress
#   tcp  iperf3 -t WINDOW, one stream VM1 -> VM2 (client CPU 0, server CPU 1)
#   rtt  ping -c 500 -i 0.002 VM1 -> VM2: median and p99 of the per-reply times
#   cpf  hairpin only: busy cycles per received frame of the bridge worker during
#        the pps run (from the instance's final counters), and of the edge's
#   lost hairpin only: frames the bridge lost during the pps run: its ports' kernel
#        RX ring drops + tx_full + its drops_total
# hairpin: release build, the bridge's worker pure polling on CPU 1
# (idle_sleep_us = 0); with its own edge both instances share CPU 1 with
# idle_sleep_us = 10. The kernel's forwarding runs in softirq on the sending CPU.
# Each round runs every topology once, in the same order, so slow drift of this
# shared VM hits all of them alike; ratios are taken per round.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
HP=${HP:-$root/target/release/hairpin}
RUNS=${RUNS:-3}
WINDOW=${WINDOW:-3}
OUT=${OUT:-/tmp/hairpin-perf-lab}
P=${HAIRPIN_LAB_PREFIX:-hp-}
if [ "$P" = hp- ]; then LABDIR=${HAIRPIN_LAB_DIR:-/run/hairpin-lab}
else LABDIR=${HAIRPIN_LAB_DIR:-/tmp/hairpin-lab-$P}; fi
export HAIRPIN_LAB_PREFIX=$P HAIRPIN_LAB_DIR=$LABDIR
TG=$root/perf/udp64.trafgen
mkdir -p "$OUT"
[ "$(id -u)" -eq 0 ] || { echo "perf/lab-vs-kernel.sh: needs root" >&2; exit 1; }
for t in trafgen iperf3 ping nft ethtool; do
  command -v $t >/dev/null || { echo "missing $t (Debian: netsniff-ng iperf3 iputils-ping nftables ethtool)" >&2; exit 1; }
done
[ -x "$HP" ] || { echo "build first: cargo build --release ($HP)" >&2; exit 1; }

KNS="${P}kvm1 ${P}kvm2 ${P}kvm3 ${P}kvm4 ${P}khv ${P}ksw"
cleanup() {
  "$HP" lab down >/dev/null 2>&1
  for n in $KNS; do
    ip netns pids $n 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del $n 2>/dev/null
  done
}
trap cleanup EXIT
cleanup

ns_add() {
  ip netns add $1; ip -n $1 link set lo up
  ip netns exec $1 sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}
nooff() { ip netns exec $1 ethtool -K $2 tx off >/dev/null 2>&1; ip netns exec $1 ethtool -K $2 tso off gso off gro off >/dev/null 2>&1; }
sink() {  # ns dev: drop the UDP flood at ingress (cheapest possible receiver)
  ip netns exec $1 nft -f - <<EOF
table netdev sink {
  chain in { type filter hook ingress device $2 priority 0; udp dport 9 drop; }
}
EOF
}
host() {  # ns mac ip
  ip -n $1 link set ${P}eth0 address $2; ip -n $1 addr add $3/24 dev ${P}eth0
  nooff $1 ${P}eth0; ip -n $1 link set ${P}eth0 up
}

# --- the kernel's topologies (built once) ------------------------------------
for n in $KNS; do ns_add $n; done
ip -n ${P}ksw link add ${P}kbr0 type bridge; ip -n ${P}ksw link add ${P}kbr1 type bridge
ip -n ${P}khv link add ${P}kup type veth peer name ${P}ksp netns ${P}ksw
ip -n ${P}ksw link set ${P}ksp master ${P}kbr0
ip -n ${P}ksw link set ${P}ksp type bridge_slave hairpin on
for k in 1 2; do
  ip -n ${P}khv link add ${P}kmv$k link ${P}kup type macvlan mode vepa
  ip -n ${P}khv link set ${P}kmv$k netns ${P}kvm$k
  ip -n ${P}kvm$k link set ${P}kmv$k name ${P}eth0
  host ${P}kvm$k 02:78:00:00:00:0$k 10.78.0.$k
done
for k in 3 4; do
  ip -n ${P}ksw link add ${P}kp$k type veth peer name ${P}eth0 netns ${P}kvm$k
  ip -n ${P}ksw link set ${P}kp$k master ${P}kbr1
  host ${P}kvm$k 02:78:00:00:00:0$k 10.78.0.$k
  nooff ${P}ksw ${P}kp$k; ip -n ${P}ksw link set ${P}kp$k up
done
nooff ${P}khv ${P}kup; nooff ${P}ksw ${P}ksp
ip -n ${P}khv link set ${P}kup up
for d in ${P}kbr0 ${P}kbr1 ${P}ksp; do ip -n ${P}ksw link set $d up; done
sink ${P}kvm2 ${P}eth0; sink ${P}kvm4 ${P}eth0

ACLN=100
{ echo "table bridge hpacl {"
  echo " chain acl { type filter hook forward priority 0; policy accept;"
  for k in $(seq 1 $ACLN); do
    echo "  ip saddr 192.0.2.$((k % 250 + 1)) ip daddr 198.51.100.$((k / 250 + 1)) udp dport $((2000 + k)) drop"
  done
  echo " }"; echo "}"; } > "$OUT/kernel-acl.nft"

# --- hairpin lab configs --------------------------------------------------------
cat > "$OUT/lab-bridge.toml" <<EOF
[lab]
idle_sleep_us = 0
bridge_core = 1
backend = "afpacket"
EOF
sed 's/^backend = "afpacket"$/backend = "afxdp"/' "$OUT/lab-bridge.toml" > "$OUT/lab-bridge-xdp.toml"
cat > "$OUT/lab-edge.toml" <<EOF
[lab]
idle_sleep_us = 10
edge_core = 1
bridge_core = 1
EOF
{ cat "$OUT/lab-bridge.toml"
  printf '\n[lab.vm.vm1]\npolicy = "acl100"\n\n[policy.acl100]\ndefault = "permit"\n'
  for k in $(seq 1 $ACLN); do
    printf '\n[[policy.acl100.rule]]\nsrc_ip = "192.0.2.%d"\ndst_ip = "198.51.100.%d"\nproto = "udp"\ndst_port = "%d"\naction = "deny"\n' \
      $((k % 250 + 1)) $((k / 250 + 1)) $((2000 + k))
  done; } > "$OUT/lab-bridge-acl.toml"
sed 's/^backend = "afpacket"$/backend = "afxdp"/' "$OUT/lab-bridge-acl.toml" > "$OUT/lab-bridge-acl-xdp.toml"

hp_up() {  # mode config
  "$HP" lab up --vms 2 --mode $1 --config $2 > "$OUT/lab-up.log" 2>&1 || { cat "$OUT/lab-up.log" >&2; exit 1; }
  sink ${P}vm2 ${P}eth0
}
hp_down_cpf() {  # prints "bridge_cycles_per_frame edge_cycles_per_frame bridge_lost"
  "$HP" lab down >/dev/null 2>&1
  local d; d=$(ip netns list | grep -c "^${P}vm" || true)
  [ "$d" -eq 0 ] || echo "WARN: lab namespaces left" >&2
  for i in bridge edge; do
    f=$LABDIR/$i.json
    if [ -s $f ] && [ $f -nt "$OUT/lab-up.log" ]; then
      python3 -c "import json,sys;c=json.load(open('$f'))['counters'];print('%.0f'%(c['busy_cycles']/max(c['rx_pkts'],1)))"
    else echo NA; fi
  done | tr '\n' ' '
  f=$LABDIR/bridge.json
  if [ -s $f ] && [ $f -nt "$OUT/lab-up.log" ]; then
    python3 -c "
import json; d = json.load(open('$f')); ps = d['ports'].values()
print(sum(p.get('backend', {}).get('rx_ring_drops', 0) + p.get('tx_full', 0) for p in ps) + d['counters']['drops_total'])"
  else echo NA; fi
}

stat_() { ip netns exec $1 cat /sys/class/net/$2/statistics/$3; }
pps_run() {  # srcns dstns dmac smac sip dip [pps] -> "delivered_Mpps offered_Mpps"
  local tp r0 r1 t0 t1 rate=()
  [ -n "${7:-}" ] && rate=(-b "${7}pps")
  ip netns exec $1 taskset -c 0 trafgen --no-sock-mem -Q -C -P 1 --dev ${P}eth0 -p --conf "$TG" \
    "${rate[@]}" -D DMAC="$3" -D SMAC="$4" -D SIP="$5" -D DIP="$6" >/dev/null 2>&1 &
  tp=$!; sleep 2
  t0=$(stat_ $1 ${P}eth0 tx_packets); r0=$(stat_ $2 ${P}eth0 rx_packets); sleep "$WINDOW"
  t1=$(stat_ $1 ${P}eth0 tx_packets); r1=$(stat_ $2 ${P}eth0 rx_packets)
  # trafgen forks one sender per CPU (-P 1: one); a background job of a script
  # ignores SIGINT, so stop the sender and its parent (by pid) with TERM, then KILL
  pkill -TERM -P $tp 2>/dev/null; kill -TERM $tp 2>/dev/null; sleep 0.3
  pkill -KILL -P $tp 2>/dev/null; kill -KILL $tp 2>/dev/null; wait $tp 2>/dev/null
  awk -v a=$r0 -v b=$r1 -v c=$t0 -v d=$t1 -v w=$WINDOW 'BEGIN{printf "%.4f %.4f", (b-a)/w/1e6, (d-c)/w/1e6}'
}
paced_run() {  # srcns dstns dmac smac sip dip pps -> "delivered_Mpps offered_Mpps"
  # Exact counts: trafgen sends WINDOW s worth of frames (-n) at the paced rate
  # and exits; the interface counters are read before it starts and after the
  # last frame had time to arrive, so delivered/offered is a ratio of frame
  # counts (the unpaced pps_run reads two counters over a window, and the
  # milliseconds between the reads skew that ratio by up to ~1 %).
  local n r0 r1 t0 t1 s0 s1
  n=$(awk -v r=$7 -v w=$WINDOW 'BEGIN{printf "%d", r * w}')
  t0=$(stat_ $1 ${P}eth0 tx_packets); r0=$(stat_ $2 ${P}eth0 rx_packets)
  s0=$(date +%s.%N)
  timeout $((WINDOW * 3 + 10)) ip netns exec $1 taskset -c 0 trafgen --no-sock-mem -Q -C -P 1 --dev ${P}eth0 -p \
    --conf "$TG" -b "${7}pps" -n "$n" -D DMAC="$3" -D SMAC="$4" -D SIP="$5" -D DIP="$6" >/dev/null 2>&1
  s1=$(date +%s.%N); sleep 0.5
  t1=$(stat_ $1 ${P}eth0 tx_packets); r1=$(stat_ $2 ${P}eth0 rx_packets)
  awk -v a=$r0 -v b=$r1 -v c=$t0 -v d=$t1 -v s0=$s0 -v s1=$s1 'BEGIN{w = s1 - s0; printf "%.6f %.6f", (b-a)/w/1e6, (d-c)/w/1e6}'
}
tcp_run() {  # cns sns sip -> Gbit/s
  local sp
  ip netns exec $2 taskset -c 1 iperf3 -s -1 -B $3 >/dev/null 2>&1 &
  sp=$!; sleep 0.5
  ip netns exec $1 taskset -c 0 iperf3 -c $3 -t "$WINDOW" -f g 2>/dev/null | awk '/receiver/{print $(NF-2)}'
  wait $sp 2>/dev/null
}
rtt_run() {  # ns ip -> "median_us p99_us"
  ip netns exec $1 ping -n -c 500 -i 0.002 $2 | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -g |
    awk '{a[NR]=$1*1000} END{if(NR==0){print "NA NA"; exit} m=a[int((NR+1)/2)]; p=a[int(NR*0.99+0.5)]; printf "%.0f %.0f", m, p}'
}

K1="${P}kvm1 ${P}kvm2 0x02,0x78,0,0,0,2 0x02,0x78,0,0,0,1 10,78,0,1 10,78,0,2"
K2="${P}kvm3 ${P}kvm4 0x02,0x78,0,0,0,4 0x02,0x78,0,0,0,3 10,78,0,3 10,78,0,4"
H="${P}vm1 ${P}vm2 0x02,0x77,0,0,0,2 0x02,0x77,0,0,0,1 10,77,0,1 10,77,0,2"

R="$OUT/results.txt"; : > "$R"
rec() { echo "$*" | tee -a "$R"; }
ip netns exec ${P}kvm1 ping -c 2 -i 0.2 -q 10.78.0.2 >/dev/null || echo "WARN: kernel VEPA ping failed" >&2
ip netns exec ${P}kvm3 ping -c 2 -i 0.2 -q 10.78.0.4 >/dev/null || echo "WARN: kernel VEB ping failed" >&2
echo "# $(date -u +%FT%TZ) $(git -C "$root" rev-parse --short HEAD) RUNS=$RUNS WINDOW=$WINDOW; load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$R"
echo "# topo round pps_delivered pps_offered tcp_gbps rtt_med_us rtt_p99_us bridge_cpf edge_cpf bridge_lost pps_target" | tee -a "$R"
for r in $(seq 1 "$RUNS"); do
  # kernel VEPA (macvlan + Linux bridge hairpin on)
  p=$(pps_run $K1); t=$(tcp_run ${P}kvm1 ${P}kvm2 10.78.0.2); l=$(rtt_run ${P}kvm1 10.78.0.2)
  rec "K-vepa $r $p $t $l NA NA NA NA"
  # the kernel's delivered rate of this round, in pps: what the paced runs offer hairpin
  kr=$(echo "$p" | awk '{printf "%d", $1 * 1e6}'); km=$(echo "$p" | awk '{print $1}')
  # hairpin bridge behind the same kernel macvlan edge
  hp_up macvtap "$OUT/lab-bridge.toml"; p=$(pps_run $H); c=$(hp_down_cpf)
  hp_up macvtap "$OUT/lab-bridge.toml"
  ip netns exec ${P}vm1 ping -c 2 -i 0.2 -q 10.77.0.2 >/dev/null || echo "WARN: hairpin VEPA ping failed" >&2
  t=$(tcp_run ${P}vm1 ${P}vm2 10.77.0.2); l=$(rtt_run ${P}vm1 10.77.0.2); hp_down_cpf >/dev/null
  rec "H-vepa $r $p $t $l $c NA"
  if [ "$kr" -gt 0 ]; then
    hp_up macvtap "$OUT/lab-bridge.toml"; p=$(paced_run $H $kr); c=$(hp_down_cpf)
    rec "H-vepa-paced $r $p NA NA NA $c $km"
  fi
  # the same with the bridge's ports on AF_XDP instead of AF_PACKET
  hp_up macvtap "$OUT/lab-bridge-xdp.toml"; p=$(pps_run $H); c=$(hp_down_cpf)
  hp_up macvtap "$OUT/lab-bridge-xdp.toml"
  ip netns exec ${P}vm1 ping -c 2 -i 0.2 -q 10.77.0.2 >/dev/null || echo "WARN: hairpin AF_XDP ping failed" >&2
  t=$(tcp_run ${P}vm1 ${P}vm2 10.77.0.2); l=$(rtt_run ${P}vm1 10.77.0.2); hp_down_cpf >/dev/null
  rec "H-vepa-xdp $r $p $t $l $c NA"
  if [ "$kr" -gt 0 ]; then
    hp_up macvtap "$OUT/lab-bridge-xdp.toml"; p=$(paced_run $H $kr); c=$(hp_down_cpf)
    rec "H-vepa-xdp-paced $r $p NA NA NA $c $km"
  fi
  # kernel VEB (plain Linux bridge)
  p=$(pps_run $K2); t=$(tcp_run ${P}kvm3 ${P}kvm4 10.78.0.4); l=$(rtt_run ${P}kvm3 10.78.0.4)
  rec "K-veb $r $p $t $l NA NA NA NA"
  # hairpin's own edge: VEPA (+ reflective relay) and VEB (local switching)
  for m in vepa veb; do
    hp_up $m "$OUT/lab-edge.toml"; p=$(pps_run $H); c=$(hp_down_cpf)
    hp_up $m "$OUT/lab-edge.toml"
    ip netns exec ${P}vm1 ping -c 2 -i 0.2 -q 10.77.0.2 >/dev/null || echo "WARN: hairpin $m ping failed" >&2
    t=$(tcp_run ${P}vm1 ${P}vm2 10.77.0.2); l=$(rtt_run ${P}vm1 10.77.0.2); hp_down_cpf >/dev/null
    rec "H-edge-$m $r $p $t $l $c NA"
  done
  # 100 ACL rules
  ip netns exec ${P}ksw nft -f "$OUT/kernel-acl.nft"
  p=$(pps_run $K1); ip netns exec ${P}ksw nft delete table bridge hpacl
  rec "K-vepa-acl $r $p NA NA NA NA NA NA NA"
  hp_up macvtap "$OUT/lab-bridge-acl.toml"; p=$(pps_run $H); c=$(hp_down_cpf)
  rec "H-vepa-acl $r $p NA NA NA $c NA"
  if [ "$kr" -gt 0 ]; then
    # paced at the kernel's rate without ACLs: hairpin should keep it with 100 rules
    hp_up macvtap "$OUT/lab-bridge-acl.toml"; p=$(paced_run $H $kr); c=$(hp_down_cpf)
    rec "H-vepa-acl-paced $r $p NA NA NA $c $km"
    hp_up macvtap "$OUT/lab-bridge-acl-xdp.toml"; p=$(paced_run $H $kr); c=$(hp_down_cpf)
    rec "H-vepa-xdp-acl-paced $r $p NA NA NA $c $km"
  fi
done

# --- summary: medians, and ratios per round ------------------------------------
python3 - "$R" <<'EOF'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l.strip() and not l.startswith('#')]
by = {}
for r in rows:
    by.setdefault(r[0], {})[int(r[1])] = r[2:]
def col(t, i):
    return [float(v[i]) for v in by.get(t, {}).values() if v[i] != 'NA']
def med(t, i):
    c = col(t, i)
    return st.median(c) if c else float('nan')
print("\nmedians over rounds (pps in Mpps, tcp in Gbit/s, rtt in us, cycles per frame)")
print("%-20s %9s %9s %7s %8s %8s %9s %8s %8s" % ("topology", "delivered", "offered", "tcp", "rtt_med", "rtt_p99", "br_cpf", "edge_cpf", "br_lost"))
TOPOS = ["K-vepa", "H-vepa", "H-vepa-paced", "H-vepa-xdp", "H-vepa-xdp-paced", "K-veb", "H-edge-vepa",
         "H-edge-veb", "K-vepa-acl", "H-vepa-acl", "H-vepa-acl-paced", "H-vepa-xdp-acl-paced"]
for t in TOPOS:
    if t in by:
        print("%-20s %9.3f %9.3f %7.2f %8.0f %8.0f %9.0f %8.0f %8.0f" % ((t,) + tuple(med(t, i) for i in range(8))))
def ratio(a, b, i):
    rs = [float(by[a][k][i]) / float(by[b][k][i]) for k in by.get(a, {}) if k in by.get(b, {})
          and by[a][k][i] != 'NA' and by[b][k][i] != 'NA' and float(by[b][k][i]) > 0]
    return "%.2f (%s)" % (st.median(rs), " ".join("%.2f" % x for x in rs)) if rs else "NA"
print("\nratios per round, median (each round)")
for a, b, what in [("H-vepa", "K-vepa", "hairpin bridge / Linux bridge, macvlan VEPA edge"),
                   ("H-vepa-acl", "K-vepa-acl", "same with 100 ACL rules"),
                   ("H-vepa-xdp", "H-vepa", "hairpin bridge on AF_XDP / on AF_PACKET"),
                   ("H-edge-vepa", "H-edge-veb", "hairpin VEPA+relay / hairpin VEB"),
                   ("K-vepa", "K-veb", "kernel VEPA+hairpin / kernel VEB")]:
    print("  %-48s pps %s  tcp %s  rtt %s" % (what, ratio(a, b, 0), ratio(a, b, 2), ratio(a, b, 3)))
for t in ["H-vepa", "H-vepa-xdp", "H-vepa-acl", "K-vepa", "K-vepa-acl"]:
    if t in by:
        print("  %-16s delivered/offered: %s" % (t, " ".join("%.3f" % (float(v[0]) / max(float(v[1]), 1e-9)) for v in by[t].values())))
print("\npaced at the kernel's delivered rate of the round (the zero-loss target), per round")
for t in ["H-vepa-paced", "H-vepa-xdp-paced", "H-vepa-acl-paced", "H-vepa-xdp-acl-paced"]:
    for k, v in sorted(by.get(t, {}).items()):
        d, o, tgt = float(v[0]), float(v[1]), float(v[8])
        print("  %-16s round %d: target %.3f Mpps, offered %.3f (%.2f of target), delivered %.3f,"
              " loss %.4f, hairpin lost %s frames, %s cycles/frame on the bridge core"
              % (t, k, tgt, o, o / max(tgt, 1e-9), d, 1 - d / max(o, 1e-9), v[7], v[5]))
EOF
