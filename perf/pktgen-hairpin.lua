-- pktgen-dpdk script written by `hairpin pktgen export --format pktgen-lua`
-- (docs/bare-metal.md). Do not edit: regenerate from the stream file.
-- Rates are percent of pktgen's port speed; hairpin's line rate was 10G.
-- pktgen ports (cable each to the switch port named):
--   pktgen port 0 -> switch port "hv1": a-b hairpin
--   pktgen port 1 -> switch port "hv2": c-a imix
--   pktgen -l 0-2 -n 4 -a PCI... -- -P -m "..." -f THIS_FILE

local seconds = 10
pktgen.screen("off")

-- port 0: switch port "hv1"
-- stream "a-b hairpin": a -> b, range mode
pktgen.set_type("0", "ipv4")
pktgen.set_proto("0", "udp")
pktgen.range.dst_mac("0", "start", "02:00:00:00:00:02")
pktgen.range.dst_mac("0", "inc", "00:00:00:00:00:00")
pktgen.range.dst_mac("0", "min", "02:00:00:00:00:02")
pktgen.range.dst_mac("0", "max", "02:00:00:00:00:02")
pktgen.range.src_mac("0", "start", "02:00:00:00:00:01")
pktgen.range.src_mac("0", "inc", "00:00:00:00:00:00")
pktgen.range.src_mac("0", "min", "02:00:00:00:00:01")
pktgen.range.src_mac("0", "max", "02:00:00:00:00:01")
pktgen.range.src_ip("0", "start", "10.0.0.1")
pktgen.range.src_ip("0", "inc", "0.0.0.0")
pktgen.range.src_ip("0", "min", "10.0.0.1")
pktgen.range.src_ip("0", "max", "10.0.0.1")
pktgen.range.dst_ip("0", "start", "10.0.0.2")
pktgen.range.dst_ip("0", "inc", "0.0.0.0")
pktgen.range.dst_ip("0", "min", "10.0.0.2")
pktgen.range.dst_ip("0", "max", "10.0.0.2")
pktgen.range.src_port("0", "start", 1000)
pktgen.range.src_port("0", "inc", 1)
pktgen.range.src_port("0", "min", 1000)
pktgen.range.src_port("0", "max", 1999)
pktgen.range.dst_port("0", "start", 1024)
pktgen.range.dst_port("0", "inc", 0)
pktgen.range.dst_port("0", "min", 1024)
pktgen.range.dst_port("0", "max", 1024)
pktgen.range.pkt_size("0", "start", 64)
pktgen.range.pkt_size("0", "inc", 0)
pktgen.range.pkt_size("0", "min", 64)
pktgen.range.pkt_size("0", "max", 64)
pktgen.vlan("0", "off")
pktgen.set_range("0", "on")
pktgen.set("0", "rate", 50.0000)
pktgen.set("0", "count", 0)

-- port 1: switch port "hv2"
-- stream "c-a imix": c -> a, sequence packets
pktgen.seqTable(0, "1", { eth_dst_addr = "02:00:00:00:00:01", eth_src_addr = "02:00:00:00:00:03", ip_dst_addr = "10.0.0.1", ip_src_addr = "10.0.0.3/32", sport = 1024, dport = 1024, ethType = "vlan", ipProto = "udp", vlanid = 10, cos = 5, pktSize = 64 })
pktgen.seqTable(1, "1", { eth_dst_addr = "02:00:00:00:00:01", eth_src_addr = "02:00:00:00:00:03", ip_dst_addr = "10.0.0.1", ip_src_addr = "10.0.0.3/32", sport = 1024, dport = 1024, ethType = "vlan", ipProto = "udp", vlanid = 10, cos = 5, pktSize = 594 })
pktgen.seqTable(2, "1", { eth_dst_addr = "02:00:00:00:00:01", eth_src_addr = "02:00:00:00:00:03", ip_dst_addr = "10.0.0.1", ip_src_addr = "10.0.0.3/32", sport = 1024, dport = 1024, ethType = "vlan", ipProto = "udp", vlanid = 10, cos = 5, pktSize = 64 })
pktgen.seqTable(3, "1", { eth_dst_addr = "02:00:00:00:00:01", eth_src_addr = "02:00:00:00:00:03", ip_dst_addr = "10.0.0.1", ip_src_addr = "10.0.0.3/32", sport = 1024, dport = 1024, ethType = "vlan", ipProto = "udp", vlanid = 10, cos = 5, pktSize = 64 })
pktgen.seqTable(4, "1", { eth_dst_addr = "02:00:00:00:00:01", eth_src_addr = "02:00:00:00:00:03", ip_dst_addr = "10.0.0.1", ip_src_addr = "10.0.0.3/32", sport = 1024, dport = 1024, ethType = "vlan", ipProto = "udp", vlanid = 10, cos = 5, pktSize = 594 })
pktgen.seqTable(5, "1", { eth_dst_addr = "02:00:00:00:00:01", eth_src_addr = "02:00:00:00:00:03", ip_dst_addr = "10.0.0.1", ip_src_addr = "10.0.0.3/32", sport = 1024, dport = 1024, ethType = "vlan", ipProto = "udp", vlanid = 10, cos = 5, pktSize = 64 })
pktgen.seqTable(6, "1", { eth_dst_addr = "02:00:00:00:00:01", eth_src_addr = "02:00:00:00:00:03", ip_dst_addr = "10.0.0.1", ip_src_addr = "10.0.0.3/32", sport = 1024, dport = 1024, ethType = "vlan", ipProto = "udp", vlanid = 10, cos = 5, pktSize = 1518 })
pktgen.seqTable(7, "1", { eth_dst_addr = "02:00:00:00:00:01", eth_src_addr = "02:00:00:00:00:03", ip_dst_addr = "10.0.0.1", ip_src_addr = "10.0.0.3/32", sport = 1024, dport = 1024, ethType = "vlan", ipProto = "udp", vlanid = 10, cos = 5, pktSize = 64 })
pktgen.seqTable(8, "1", { eth_dst_addr = "02:00:00:00:00:01", eth_src_addr = "02:00:00:00:00:03", ip_dst_addr = "10.0.0.1", ip_src_addr = "10.0.0.3/32", sport = 1024, dport = 1024, ethType = "vlan", ipProto = "udp", vlanid = 10, cos = 5, pktSize = 594 })
pktgen.seqTable(9, "1", { eth_dst_addr = "02:00:00:00:00:01", eth_src_addr = "02:00:00:00:00:03", ip_dst_addr = "10.0.0.1", ip_src_addr = "10.0.0.3/32", sport = 1024, dport = 1024, ethType = "vlan", ipProto = "udp", vlanid = 10, cos = 5, pktSize = 64 })
pktgen.seqTable(10, "1", { eth_dst_addr = "02:00:00:00:00:01", eth_src_addr = "02:00:00:00:00:03", ip_dst_addr = "10.0.0.1", ip_src_addr = "10.0.0.3/32", sport = 1024, dport = 1024, ethType = "vlan", ipProto = "udp", vlanid = 10, cos = 5, pktSize = 594 })
pktgen.seqTable(11, "1", { eth_dst_addr = "02:00:00:00:00:01", eth_src_addr = "02:00:00:00:00:03", ip_dst_addr = "10.0.0.1", ip_src_addr = "10.0.0.3/32", sport = 1024, dport = 1024, ethType = "vlan", ipProto = "udp", vlanid = 10, cos = 5, pktSize = 64 })
pktgen.set("1", "seqCnt", 12)
pktgen.set("1", "rate", 10.0000)
pktgen.set("1", "count", 0)

pktgen.clr()
pktgen.start("0,1")
pktgen.delay(seconds * 1000)
pktgen.stop("0,1")
pktgen.delay(500)
for p = 0, 1 do
    local s = pktgen.portStats(tostring(p), "port")[p]
    print(string.format("port %d: tx %d rx %d frames in %d s: rx %.3f Mpps",
        p, s.opackets, s.ipackets, seconds, s.ipackets / seconds / 1e6))
end
pktgen.quit()
