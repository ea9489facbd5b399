#!/bin/bash
# perf/lab-vs-kernel.sh: the `hairpin lab` topology against the Linux kernel
# doing the same jobs, on veth on this machine, interleaved A/B rounds.
#
#   sudo perf/lab-vs-kernel.sh            # RUNS=3 WINDOW=3 by default
#
# Topologies (all namespaces hp-*; kernel ones hp-k*):
#   K-vepa   kernel macvlan (vepa) edge on hp-kup -> veth -> Linux bridge, hairpin on
#   H-vepa   same kernel macvlan edge (lab --mode macvtap) -> veth -> hairpin bridge
#   H-vepa-xdp  as H-vepa, the bridge's ports on AF_XDP ([lab] backend = "afxdp")
#   K-veb    two VM veths on a plain Linux bridge (local switching)
#   H-edge-vepa / H-edge-veb   hairpin's own edge (lab --mode vepa / veb) + hairpin bridge
#   K-vepa-acl / H-vepa-acl    as K-vepa / H-vepa with 100 non-matching ACL rules
#                              (nft bridge forward chain / a hairpin policy on VM1)
# Measures per topology and round:
#   pps  trafgen (netsniff-ng), 64-byte UDP VM1 -> VM2, one sender pinned to CPU 0;
#        delivered = rx_packets delta on VM2's interface over WINDOW s, offered =
#        tx_packets delta on VM1's; receivers drop UDP port 9 at nft netdev ingress
#   tcp  iperf3 -t WINDOW, one stream VM1 -> VM2 (client CPU 0, server CPU 1)
#   rtt  ping -c 500 -i 0.002 VM1 -> VM2: median and p99 of the per-reply times
#   cpf  hairpin only: busy cycles per received frame of the bridge worker during
#        the pps run (from the instance's final counters), and of the edge's
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
TG=$root/perf/udp64.trafgen
mkdir -p "$OUT"
[ "$(id -u)" -eq 0 ] || { echo "perf/lab-vs-kernel.sh: needs root" >&2; exit 1; }
for t in trafgen iperf3 ping nft ethtool; do
  command -v $t >/dev/null || { echo "missing $t (Debian: netsniff-ng iperf3 iputils-ping nftables ethtool)" >&2; exit 1; }
done
[ -x "$HP" ] || { echo "build first: cargo build --release ($HP)" >&2; exit 1; }

KNS="hp-kvm1 hp-kvm2 hp-kvm3 hp-kvm4 hp-khv hp-ksw"
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
  ip -n $1 link set hp-eth0 address $2; ip -n $1 addr add $3/24 dev hp-eth0
  nooff $1 hp-eth0; ip -n $1 link set hp-eth0 up
}

# --- the kernel's topologies (built once) ------------------------------------
for n in $KNS; do ns_add $n; done
ip -n hp-ksw link add hp-kbr0 type bridge; ip -n hp-ksw link add hp-kbr1 type bridge
ip -n hp-khv link add hp-kup type veth peer name hp-ksp netns hp-ksw
ip -n hp-ksw link set hp-ksp master hp-kbr0
ip -n hp-ksw link set hp-ksp type bridge_slave hairpin on
for k in 1 2; do
  ip -n hp-khv link add hp-kmv$k link hp-kup type macvlan mode vepa
  ip -n hp-khv link set hp-kmv$k netns hp-kvm$k
  ip -n hp-kvm$k link set hp-kmv$k name hp-eth0
  host hp-kvm$k 02:78:00:00:00:0$k 10.78.0.$k
done
for k in 3 4; do
  ip -n hp-ksw link add hp-kp$k type veth peer name hp-eth0 netns hp-kvm$k
  ip -n hp-ksw link set hp-kp$k master hp-kbr1
  host hp-kvm$k 02:78:00:00:00:0$k 10.78.0.$k
  nooff hp-ksw hp-kp$k; ip -n hp-ksw link set hp-kp$k up
done
nooff hp-khv hp-kup; nooff hp-ksw hp-ksp
ip -n hp-khv link set hp-kup up
for d in hp-kbr0 hp-kbr1 hp-ksp; do ip -n hp-ksw link set $d up; done
sink hp-kvm2 hp-eth0; sink hp-kvm4 hp-eth0

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
EOF
{ cat "$OUT/lab-bridge.toml"; echo 'backend = "afxdp"'; } > "$OUT/lab-bridge-xdp.toml"
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

hp_up() {  # mode config
  "$HP" lab up --vms 2 --mode $1 --config $2 > "$OUT/lab-up.log" 2>&1 || { cat "$OUT/lab-up.log" >&2; exit 1; }
  sink hp-vm2 hp-eth0
}
hp_down_cpf() {  # prints "bridge_cycles_per_frame edge_cycles_per_frame"
  "$HP" lab down >/dev/null 2>&1
  local d; d=$(ip netns list | grep -c '^hp-vm' || true)
  [ "$d" -eq 0 ] || echo "WARN: lab namespaces left" >&2
  for i in bridge edge; do
    f=/run/hairpin-lab/$i.json
    if [ -s $f ] && [ $f -nt "$OUT/lab-up.log" ]; then
      python3 -c "import json,sys;c=json.load(open('$f'))['counters'];print('%.0f'%(c['busy_cycles']/max(c['rx_pkts'],1)))"
    else echo NA; fi
  done | tr '\n' ' '
}

stat_() { ip netns exec $1 cat /sys/class/net/$2/statistics/$3; }
pps_run() {  # srcns dstns dmac smac sip dip -> "delivered_Mpps offered_Mpps"
  local tp r0 r1 t0 t1
  ip netns exec $1 taskset -c 0 trafgen --no-sock-mem -Q -C -P 1 --dev hp-eth0 -p --conf "$TG" \
    -D DMAC="$3" -D SMAC="$4" -D SIP="$5" -D DIP="$6" >/dev/null 2>&1 &
  tp=$!; sleep 2
  t0=$(stat_ $1 hp-eth0 tx_packets); r0=$(stat_ $2 hp-eth0 rx_packets); sleep "$WINDOW"
  t1=$(stat_ $1 hp-eth0 tx_packets); r1=$(stat_ $2 hp-eth0 rx_packets)
  # trafgen forks one sender per CPU (-P 1: one); a background job of a script
  # ignores SIGINT, so stop the sender and its parent (by pid) with TERM, then KILL
  pkill -TERM -P $tp 2>/dev/null; kill -TERM $tp 2>/dev/null; sleep 0.3
  pkill -KILL -P $tp 2>/dev/null; kill -KILL $tp 2>/dev/null; wait $tp 2>/dev/null
  awk -v a=$r0 -v b=$r1 -v c=$t0 -v d=$t1 -v w=$WINDOW 'BEGIN{printf "%.4f %.4f", (b-a)/w/1e6, (d-c)/w/1e6}'
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

K1="hp-kvm1 hp-kvm2 0x02,0x78,0,0,0,2 0x02,0x78,0,0,0,1 10,78,0,1 10,78,0,2"
K2="hp-kvm3 hp-kvm4 0x02,0x78,0,0,0,4 0x02,0x78,0,0,0,3 10,78,0,3 10,78,0,4"
H="hp-vm1 hp-vm2 0x02,0x77,0,0,0,2 0x02,0x77,0,0,0,1 10,77,0,1 10,77,0,2"

R="$OUT/results.txt"; : > "$R"
rec() { echo "$*" | tee -a "$R"; }
ip netns exec hp-kvm1 ping -c 2 -i 0.2 -q 10.78.0.2 >/dev/null || echo "WARN: kernel VEPA ping failed" >&2
ip netns exec hp-kvm3 ping -c 2 -i 0.2 -q 10.78.0.4 >/dev/null || echo "WARN: kernel VEB ping failed" >&2
echo "# $(date -u +%FT%TZ) $(git -C "$root" rev-parse --short HEAD) RUNS=$RUNS WINDOW=$WINDOW; load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$R"
echo "# topo round pps_delivered pps_offered tcp_gbps rtt_med_us rtt_p99_us bridge_cpf edge_cpf" | tee -a "$R"
for r in $(seq 1 "$RUNS"); do
  # kernel VEPA (macvlan + Linux bridge hairpin on)
  p=$(pps_run $K1); t=$(tcp_run hp-kvm1 hp-kvm2 10.78.0.2); l=$(rtt_run hp-kvm1 10.78.0.2)
  rec "K-vepa $r $p $t $l NA NA"
  # hairpin bridge behind the same kernel macvlan edge
  hp_up macvtap "$OUT/lab-bridge.toml"; p=$(pps_run $H); c=$(hp_down_cpf)
  hp_up macvtap "$OUT/lab-bridge.toml"
  ip netns exec hp-vm1 ping -c 2 -i 0.2 -q 10.77.0.2 >/dev/null || echo "WARN: hairpin VEPA ping failed" >&2
  t=$(tcp_run hp-vm1 hp-vm2 10.77.0.2); l=$(rtt_run hp-vm1 10.77.0.2); hp_down_cpf >/dev/null
  rec "H-vepa $r $p $t $l $c"
  # the same with the bridge's ports on AF_XDP instead of AF_PACKET
  hp_up macvtap "$OUT/lab-bridge-xdp.toml"; p=$(pps_run $H); c=$(hp_down_cpf)
  hp_up macvtap "$OUT/lab-bridge-xdp.toml"
  ip netns exec hp-vm1 ping -c 2 -i 0.2 -q 10.77.0.2 >/dev/null || echo "WARN: hairpin AF_XDP ping failed" >&2
  t=$(tcp_run hp-vm1 hp-vm2 10.77.0.2); l=$(rtt_run hp-vm1 10.77.0.2); hp_down_cpf >/dev/null
  rec "H-vepa-xdp $r $p $t $l $c"
  # kernel VEB (plain Linux bridge)
  p=$(pps_run $K2); t=$(tcp_run hp-kvm3 hp-kvm4 10.78.0.4); l=$(rtt_run hp-kvm3 10.78.0.4)
  rec "K-veb $r $p $t $l NA NA"
  # hairpin's own edge: VEPA (+ reflective relay) and VEB (local switching)
  for m in vepa veb; do
    hp_up $m "$OUT/lab-edge.toml"; p=$(pps_run $H); c=$(hp_down_cpf)
    hp_up $m "$OUT/lab-edge.toml"
    ip netns exec hp-vm1 ping -c 2 -i 0.2 -q 10.77.0.2 >/dev/null || echo "WARN: hairpin $m ping failed" >&2
    t=$(tcp_run hp-vm1 hp-vm2 10.77.0.2); l=$(rtt_run hp-vm1 10.77.0.2); hp_down_cpf >/dev/null
    rec "H-edge-$m $r $p $t $l $c"
  done
  # 100 ACL rules
  ip netns exec hp-ksw nft -f "$OUT/kernel-acl.nft"
  p=$(pps_run $K1); ip netns exec hp-ksw nft delete table bridge hpacl
  rec "K-vepa-acl $r $p NA NA NA NA NA"
  hp_up macvtap "$OUT/lab-bridge-acl.toml"; p=$(pps_run $H); c=$(hp_down_cpf)
  rec "H-vepa-acl $r $p NA NA NA $c"
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
print("%-12s %9s %9s %7s %8s %8s %9s %8s" % ("topology", "delivered", "offered", "tcp", "rtt_med", "rtt_p99", "br_cpf", "edge_cpf"))
for t in ["K-vepa", "H-vepa", "H-vepa-xdp", "K-veb", "H-edge-vepa", "H-edge-veb", "K-vepa-acl", "H-vepa-acl"]:
    if t in by:
        print("%-12s %9.3f %9.3f %7.2f %8.0f %8.0f %9.0f %8.0f" % ((t,) + tuple(med(t, i) for i in range(7))))
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
        print("  %-12s delivered/offered: %s" % (t, " ".join("%.3f" % (float(v[0]) / max(float(v[1]), 1e-9)) for v in by[t].values())))
EOF
