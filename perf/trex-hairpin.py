# perf/trex-hairpin.py: a TRex stateless profile for a VM-to-VM hairpin stream
# (docs/bare-metal.md, section 6). TRex port 0 is cabled to hairpin's
# VM-facing port (trunk, VLAN 10); VMs A and B are [[vm]] entries on that
# port, so every frame comes back out of the same port. Not run in this
# repository's CI (it needs two machines).
#   trex-console> start -f perf/trex-hairpin.py -m 100% -p 0
from trex_stl_lib.api import STLProfile, STLStream, STLPktBuilder, STLTXCont
from scapy.layers.l2 import Ether, Dot1Q
from scapy.layers.inet import IP, UDP


class HairpinStream:
    def get_streams(self, direction=0, **kwargs):
        base = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                / Dot1Q(vlan=10) / IP(src="10.0.0.1", dst="10.0.0.2")
                / UDP(sport=12345, dport=12346))
        pad = max(0, 60 - len(base)) * b"x"
        return [STLStream(packet=STLPktBuilder(pkt=base / pad), mode=STLTXCont())]


def register():
    return HairpinStream()
