-- perf/pktgen-hairpin.lua: pktgen-dpdk on a second machine drives a VM-to-VM
-- hairpin stream into hairpin's port (docs/bare-metal.md, section 6).
-- Port 0 of pktgen is cabled to hairpin's VM-facing port (access, untagged).
-- VM A (02:00:00:00:00:01) sends to VM B (02:00:00:00:00:02); both must be
-- declared as [[vm]] on that port (static FDB entries), so every frame is
-- reflected back out of the port it came in on and pktgen's RX rate is the
-- hairpin rate. Not run in this repository's CI (it needs two machines).
--   pktgen -l 0-2 -n 4 -a PCI -- -P -m "[1:2].0" -f perf/pktgen-hairpin.lua
local port = "0"
local seconds = 10

pktgen.screen("off")
pktgen.set_mac(port, "src", "02:00:00:00:00:01")
pktgen.set_mac(port, "dst", "02:00:00:00:00:02")
pktgen.set_ipaddr(port, "src", "10.0.0.1/24")
pktgen.set_ipaddr(port, "dst", "10.0.0.2")
pktgen.set_proto(port, "udp")
pktgen.set(port, "size", 64)
pktgen.set(port, "rate", 100)
pktgen.set(port, "count", 0)
pktgen.clr()
pktgen.start(port)
pktgen.delay(seconds * 1000)
pktgen.stop(port)
pktgen.delay(500)
local s = pktgen.portStats(port, "port")[tonumber(port)]
print(string.format("tx %d rx %d frames in %d s: %.3f Mpps reflected",
    s.opackets, s.ipackets, seconds, s.ipackets / seconds / 1e6))
pktgen.quit()
