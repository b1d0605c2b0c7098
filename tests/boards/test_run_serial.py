# amaranth: UnusedElaboratable=no
"""``narrowgen run`` end to end over a real serial port (a pty), through pyserial.

No board is attached to our machines: a thread on the pty's master side plays the device — it
speaks the link protocol of boards/link.py and computes each beat with the golden model, as the
bitstream does with the core. The command, the pyserial transport, the host driver and the
scoring are the real ones.
"""

from __future__ import annotations

import os
import threading
import tty

import numpy as np
import pytest

from boards import link as L
from gen.cli import main
from gen.payload import pack_beats, payload_width, unpack_beats
from hdl.mx.dequantize import MXDequantize
from sim.golden.mx import dequantize_blocks

FMT, BLOCK = "mxfp4_e2m1", 2


class PtyDevice(threading.Thread):
    """mx-dequantize (MXFP4, block 2) behind the link protocol, on a pty master."""

    def __init__(self, master: int, corrupt: bool = False):
        super().__init__(daemon=True)
        core = MXDequantize(FMT, block_size=BLOCK)
        self.in_layout = core.i.payload.shape()
        self.out_layout = core.o.payload.shape()
        self.in_w, self.out_w = payload_width(self.in_layout), payload_width(self.out_layout)
        self.master, self.corrupt, self.stop = master, corrupt, threading.Event()
        self.decoder = L.FrameDecoder({L.TYPE_DATA: (self.in_w + 7) // 8, L.TYPE_INFO: 0})

    def run(self):
        while not self.stop.is_set():
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for frame in self.decoder.feed(data):
                if frame.type == L.TYPE_INFO:
                    reply = L.encode_frame(L.TYPE_INFO,
                                           L.Info(1, 4, self.in_w, self.out_w).encode())
                else:
                    f = unpack_beats(self.in_layout, np.frombuffer(frame.payload, np.uint8)[None])
                    bits = dequantize_blocks(f["scale"].astype(np.uint8),
                                             f["codes"].astype(np.uint8), FMT)
                    if self.corrupt:
                        bits = bits ^ np.uint32(1)
                    out = pack_beats(self.out_layout, {"values": bits.astype(np.int64)})
                    reply = L.encode_frame(L.TYPE_DATA, out[0].tobytes())
                os.write(self.master, reply)


@pytest.fixture
def pty_port():
    master, slave = os.openpty()
    tty.setraw(master)
    yield master, os.ttyname(slave)
    os.close(slave)
    os.close(master)


@pytest.mark.parametrize("corrupt, code, verdict", [(False, 0, "PASS"), (True, 1, "FAIL")])
def test_run_over_a_serial_port(pty_port, capsys, corrupt, code, verdict):
    master, port = pty_port
    device = PtyDevice(master, corrupt=corrupt)
    device.start()
    rc = main(["run", "icebreaker", "mx-dequantize", "-p", f"format={FMT}", "-p",
               f"block_size={BLOCK}", "--port", port, "-n", "40", "--seed", "3"])
    device.stop.set()
    out = capsys.readouterr().out
    assert rc == code, out
    assert out.strip().splitlines()[-1] == verdict
    checked = int(out.split("vectors")[1].split()[0])
    assert checked >= 40
    if corrupt:
        assert f"{checked} mismatches" in out
    else:
        assert "0 mismatches" in out


def test_run_reports_an_unopenable_port(capsys, tmp_path):
    rc = main(["run", "icebreaker", "mx-dequantize", "--port", str(tmp_path / "ttyNONE")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert err[-1].startswith("narrowgen: error: cannot open serial port")
    assert not any("Traceback" in line for line in err)
