from test_kernel_interop import *  # noqa
import json

@pytest.mark.parametrize("opener", list(OPENERS))
async def test_dbg(kernel_peer, opener, tshark, tmp_path):
    kp = kernel_peer
    kp.gateway.set_impairment(GatewayImpairment(loss=0.02, reorder=0.02, seed=11))
    capture = tmp_path / "atcp.pcap"
    pair = await OPENERS[opener](kp, atcp.Config(pcap_path=str(capture)))
    try:
        await exchange(pair, TRANSFER, seed=5, timeout=LOSSY_TIMEOUT)
    finally:
        await pair.close()
    conn = pair.conn
    pair.writer.transport.endpoint.pcap.flush()
    rows = frames(tshark, capture)
    bad = problems(rows)
    for b in bad:
        i = rows.index(b)
        print("PROBLEM", i, json.dumps(b))
        for r in rows[max(0, i-3):i+2]:
            print("   ", r["tcp.srcport"], r["tcp.seq"], r["tcp.flags.fin"], r["_ws.expert.severity"], r["tcp.analysis.retransmission"], r["tcp.analysis.out_of_order"])
    print("resent", len(resent(rows, conn.local_port)), "retransmits", conn.retransmits)
    assert not bad
