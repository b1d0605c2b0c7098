# amaranth: UnusedElaboratable=no
"""Board support and host link: framing, host logic, the whole board top in co-simulation, and
bitstream builds for both boards.

The co-simulation runs the production host code (:mod:`boards.host`, :mod:`boards.link`) against
the emitted Verilog of :class:`boards.board_top.SimTop` over a simulated serial line
(:mod:`sim.tb.board_tb`); expected beats come from :mod:`sim.golden.mx`.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from boards import link as L
from boards.board_top import BoardTop, SimTop
from boards.host import DeviceError, HostLink, LinkError, run_vectors
from boards.platforms import BOARDS, BitstreamError, build_bitstream, tool_env
from boards.uart import UARTRx, UARTTx, divisor_for
from gen.emit import strip_debug_wires
from gen.payload import pack_beats
from gen.registry import get_core
from hdl.mx.dequantize import MXDequantize
from sim.golden.mx import dequantize_blocks
from sim.runner import run_cocotb

BOARD_JOB_ENV = "NARROWGEN_BOARD_JOB"       # sim.tb.board_tb.JOB_ENV (not imported: cocotb)
SIM_PORTS = ("clk", "rst", "rx", "tx", "led")
DIVISOR = 8

# ----------------------------------------------------------------------------------------------
# Framing, pure Python


def test_crc_is_ccitt_false_from_the_amaranth_catalog():
    from amaranth.lib import crc
    assert L.CRC_ALGORITHM is crc.catalog.CRC16_IBM_3740
    assert L.crc16(b"123456789") == 0x29B1


def test_frame_layout():
    frame = L.encode_frame(L.TYPE_DATA, b"\x01\x02\x03")
    body = bytes([0x44, 3, 0, 1, 2, 3])
    assert frame == bytes([0xA5]) + body + struct.pack("<H", L.crc16(body))
    assert L.encode_frame(L.TYPE_INFO) == bytes([0xA5, 0x49, 0, 0]) + struct.pack(
        "<H", L.crc16(bytes([0x49, 0, 0])))
    with pytest.raises(ValueError, match="payload of 65536 bytes exceeds"):
        L.encode_frame(L.TYPE_DATA, bytes(65536))
    with pytest.raises(ValueError, match="frame type must be a byte"):
        L.encode_frame(256)


def test_payloads_round_trip():
    info = L.Info(1, 4, 137, 64)
    assert L.Info.decode(info.encode()) == info and (info.in_bytes, info.out_bytes) == (18, 8)
    assert L.decode_error(L.encode_error(L.ERR_CRC, 70000)) == (L.ERR_CRC, 70000 & 0xFFFF)


def _random_frames(rng, n, data_bytes):
    frames = []
    for _ in range(n):
        kind = rng.integers(3)
        if kind == 0:
            frames.append(L.Frame(L.TYPE_DATA, rng.integers(0, 256, data_bytes,
                                                             dtype=np.uint8).tobytes()))
        elif kind == 1:
            frames.append(L.Frame(L.TYPE_ERROR, L.encode_error(int(rng.integers(1, 6)),
                                                               int(rng.integers(1 << 16)))))
        else:
            frames.append(L.Frame(L.TYPE_INFO, L.Info(1, 4, 16, 64).encode()))
    return frames


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
def test_decoder_round_trip_in_any_chunking(chunk):
    rng = np.random.default_rng(chunk)
    frames = _random_frames(rng, 50, 9)
    stream_ = b"\x00\x13garbage" + b"".join(L.encode_frame(f.type, f.payload) for f in frames)
    dec = L.FrameDecoder(data_bytes=9)
    got = []
    for k in range(0, len(stream_), chunk):
        got += dec.feed(stream_[k:k + chunk])
    assert got == frames
    assert (dec.crc_errors, dec.malformed, dec.skipped, dec.pending) == (0, 0, 9, 0)


def test_decoder_detects_every_corrupted_byte_and_resyncs():
    """Flip each byte of the middle frame in turn: it is never delivered, its neighbours are."""
    payloads = [bytes(range(k, k + 8)) for k in (10, 40, 80)]
    frames = [L.encode_frame(L.TYPE_DATA, p) for p in payloads]
    for pos in range(len(frames[1])):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(frames[1])
            bad[pos] ^= flip
            dec = L.FrameDecoder(data_bytes=8)
            got = dec.feed(frames[0] + bytes(bad) + frames[2])
            assert [f.payload for f in got] == [payloads[0], payloads[2]], (pos, flip)
            if pos == 0:
                assert dec.skipped >= len(bad)          # no SOF: skipped while hunting
            else:
                assert dec.crc_errors + dec.malformed >= 1, (pos, flip)


def test_decoder_flags_crc_errors_and_malformed_headers():
    good = L.encode_frame(L.TYPE_DATA, b"abcd")
    bad_crc = bytearray(good)
    bad_crc[-2] ^= 1
    wrong_len = L.encode_frame(L.TYPE_DATA, b"abc")
    unknown = L.encode_frame(0x7E, b"abcd")
    dec = L.FrameDecoder(data_bytes=4)
    got = dec.feed(bytes(bad_crc) + wrong_len + unknown + good)
    assert got == [L.Frame(L.TYPE_DATA, b"abcd")]
    assert dec.crc_errors == 1 and dec.malformed >= 2     # (+ any false SOF in the bytes)


# ----------------------------------------------------------------------------------------------
# Host logic against a Python model of the device (same LinkProtocol the board tests use)


class FakeDevice:
    """A device model behind the transport interface: ``a`` input beats -> ``b`` output beats.

    Input beats whose outputs the host has not read yet are "in flight"; more than
    ``fifo_depth`` of them overflow (dropped, reported), as on the board.
    """

    def __init__(self, in_bytes, out_bytes, fn, *, a=1, b=1, fifo_depth=4, info=None):
        self.in_bytes, self.out_bytes, self.fn, self.a, self.b = in_bytes, out_bytes, fn, a, b
        self.fifo_depth = fifo_depth
        self.info = info or L.Info(1, fifo_depth, 8 * in_bytes, 8 * out_bytes)
        self.decoder = L.FrameDecoder({L.TYPE_DATA: in_bytes, L.TYPE_INFO: 0})
        self.group: list[bytes] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.overflows = 0
        self.pending = bytearray()
        self.silent = False

    def write(self, data: bytes) -> None:
        crc_before = self.decoder.crc_errors
        for frame in self.decoder.feed(data):
            if frame.type == L.TYPE_INFO:
                self.pending += L.encode_frame(L.TYPE_INFO, self.info.encode())
                continue
            if self.in_flight >= self.fifo_depth:
                self.overflows += 1
                self.pending += L.encode_frame(L.TYPE_ERROR,
                                               L.encode_error(L.ERR_OVERFLOW, self.overflows))
                continue
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.group.append(frame.payload)
            if len(self.group) == self.a:
                for out in self.fn(self.group):
                    self.pending += L.encode_frame(L.TYPE_DATA, out)
                self.group = []
        if self.decoder.crc_errors != crc_before:
            self.pending += L.encode_frame(L.TYPE_ERROR,
                                           L.encode_error(L.ERR_CRC, self.decoder.crc_errors))

    def read(self, timeout: float) -> bytes:
        if self.silent:
            return b""
        data, self.pending = bytes(self.pending), bytearray()
        # The host has now seen these outputs: their input beats are answered.
        outs = data.count(bytes([L.SOF, L.TYPE_DATA]))
        self.in_flight = max(0, self.in_flight - outs * self.a // self.b)
        return data


def _sum_pairs(group):
    return [bytes([(group[0][0] + group[1][0]) & 0xFF, 0])]


@pytest.mark.parametrize("a, b, fn", [
    (1, 1, lambda g: [bytes([g[0][0] ^ 0xFF, g[0][0]])]),
    (2, 1, _sum_pairs),
    (1, 3, lambda g: [bytes([g[0][0], k]) for k in range(3)]),
])
@pytest.mark.parametrize("window", [None, 1, 2, 4])
def test_run_vectors_windowing(a, b, fn, window):
    rng = np.random.default_rng(0)
    n_in = 24
    in_rows = rng.integers(0, 256, (n_in, 1), dtype=np.uint8)
    dev = FakeDevice(1, 2, fn, a=a, b=b, fifo_depth=4)
    expected = np.array([list(o) for k in range(0, n_in, a)
                         for o in fn([r.tobytes() for r in in_rows[k:k + a]])], dtype=np.uint8)
    link = HostLink(dev)
    out = run_vectors(link, in_rows, 2, n_in * b // a, window=window)
    assert np.array_equal(out, expected)
    assert dev.overflows == 0 and link.stats.clean
    limit = window if window is not None else dev.fifo_depth
    assert dev.max_in_flight <= max(limit // a, 1) * a


def test_unwindowed_flood_is_reported_as_overflow():
    dev = FakeDevice(1, 1, lambda g: [g[0]], fifo_depth=2)
    link = HostLink(dev)
    link.send_beats(np.arange(5, dtype=np.uint8).reshape(5, 1))
    with pytest.raises(DeviceError, match="overflow"):
        link.recv_beats(5, 1, timeout=0.01)


def test_bad_crc_from_host_is_reported():
    dev = FakeDevice(1, 1, lambda g: [g[0]])
    link = HostLink(dev)
    frame = bytearray(L.encode_frame(L.TYPE_DATA, b"\x07"))
    frame[4] ^= 1
    link.send_raw(bytes(frame))
    assert link.wait_reports(0.01) == [(L.ERR_CRC, 1)]
    assert link.stats.device_errors == {"crc": 1}
    assert np.array_equal(run_vectors(link, np.array([[9]], np.uint8), 1, 1), [[9]])


def test_run_vectors_rejects_a_different_bitstream():
    dev = FakeDevice(1, 2, lambda g: [b"\0\0"], info=L.Info(1, 4, 16, 16))
    with pytest.raises(LinkError, match="is the right bitstream loaded"):
        run_vectors(HostLink(dev), np.zeros((3, 1), np.uint8), 2, 3)


def test_silence_is_a_timeout():
    dev = FakeDevice(1, 1, lambda g: [g[0]])
    dev.silent = True
    with pytest.raises(LinkError, match="timed out after 0.01 s of silence waiting for the INFO"):
        HostLink(dev).info(timeout=0.01)


# ----------------------------------------------------------------------------------------------
# Gateware: parameter checks and a UART loopback in Amaranth's simulator


def test_uart_divisor_validation():
    with pytest.raises(ValueError, match="divisor must be 4..16777215 clock cycles per bit, not 3"):
        UARTTx(3)
    with pytest.raises(TypeError, match="divisor must be an int"):
        UARTRx(8.0)
    assert divisor_for(12e6, 115200) == 104 and divisor_for(25e6, 115200) == 217
    with pytest.raises(ValueError, match="too fast"):
        divisor_for(12e6, 5_000_000)
    with pytest.raises(ValueError, match="rate error"):
        divisor_for(12e6, 1_400_000)


def test_board_top_needs_a_stream_core():
    class NoStreams(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(8), "b": Out(8)})

        def elaborate(self, platform):
            return Module()

    with pytest.raises(TypeError, match="needs a port 'i' of type In\\(stream.Signature"):
        BoardTop(NoStreams(), divisor=8)
    with pytest.raises(ValueError, match="fifo_depth must be an int in 1..255, not 0"):
        BoardTop(MXDequantize("mxfp4_e2m1", block_size=2), divisor=8, fifo_depth=0)


@pytest.mark.parametrize("divisor", [4, 5, 13])
def test_uart_loopback(divisor):
    """TX -> RX at the smallest and odd divisors: every byte arrives, then a framing error."""
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    force_low = Signal()
    m.d.comb += [rx.rx.eq(tx.tx & ~force_low), rx.o.ready.eq(1)]
    data = [0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80, 0x3C]
    got, framing = [], []

    async def bench(ctx):
        for byte in data:
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
            ctx.set(tx.i.valid, 0)
            await ctx.tick()
        await ctx.tick().repeat(12 * divisor)
        ctx.set(force_low, 1)                      # a break: start bit, never a stop bit
        await ctx.tick().repeat(14 * divisor)
        ctx.set(force_low, 0)
        await ctx.tick().repeat(4 * divisor)

    async def monitor(ctx):
        async for _, _, valid, payload, ferr in ctx.tick().sample(rx.o.valid, rx.o.payload,
                                                                 rx.framing_error):
            if valid:
                got.append(payload)
            if ferr:
                framing.append(1)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(monitor)
    sim.run()
    assert got == data
    assert len(framing) == 1


# ----------------------------------------------------------------------------------------------
# The whole board top in co-simulation (production host code over a simulated serial line)


def _emit(top, name, work_dir: Path) -> Path:
    path = work_dir / "boards" / f"{name}.v"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = strip_debug_wires(verilog.convert(top, name=name, emit_src=False))
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


@pytest.fixture(scope="module")
def dequantize_board(work_dir):
    """SimTop around mx-dequantize (MXFP4, block 2): 2-byte input beats, 8-byte output beats;
    20 random blocks plus corner scales, expected beats from sim.golden.mx."""
    core = MXDequantize("mxfp4_e2m1", block_size=2)
    top = SimTop(core, divisor=DIVISOR, timeout_bytes=32)
    path = _emit(top, "board_mx_dequantize_fp4_b2", work_dir)
    rng = np.random.default_rng(2024)
    scales = np.concatenate([[0, 1, 127, 254, 255],
                             rng.integers(100, 160, 17)]).astype(np.uint8)
    codes = rng.integers(0, 16, (scales.size, 2)).astype(np.uint8)
    in_rows = pack_beats(core.i.payload.shape(), {"scale": scales, "codes": codes})
    bits = dequantize_blocks(scales, codes, "mxfp4_e2m1").astype(np.uint32)
    expected = pack_beats(core.o.payload.shape(), {"values": bits})
    job = dict(in_rows=in_rows, expected=expected, divisor=DIVISOR, in_width=16, out_width=64,
               fifo_depth=top.info.fifo_depth, corrupt=6)
    return path, job


def _check_run(run, n_tests):
    tail = "\n".join(Path(run.log).read_text(errors="replace").splitlines()[-40:])
    assert run.tests == n_tests and run.failed == 0, f"{run.failed} of {run.tests} failed\n{tail}"


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_board_cosim_mx_dequantize(sim, dequantize_board, work_dir):
    """INFO, 22 golden beats bit-exact, corrupted/malformed/truncated frames and a break (each
    reported, none computed on, good frames still work), and an unwindowed flood (every beat
    answered or reported as an overflow)."""
    path, job = dequantize_board
    run = run_cocotb(path, path.stem, sim, test_module="sim.tb.board_tb", ports=SIM_PORTS,
                     work_dir=work_dir, job=job, job_env=BOARD_JOB_ENV)
    _check_run(run, 4)
    with np.load(run.run_dir / "result.npz") as r:
        actual = r["actual"]
    assert actual.shape == job["expected"].shape and np.array_equal(actual, job["expected"])


@pytest.mark.sim
def test_board_cosim_mx_quantize_two_beats_per_block(work_dir):
    """mx-quantize with lanes=1: two FP32 input beats per output block, windowed by groups."""
    core_rec = get_core("mx-quantize")
    p = core_rec.make_params(format="mxfp4_e2m1", block_size=2, lanes=1)
    core = core_rec.build(p)
    top = SimTop(core, divisor=DIVISOR, timeout_bytes=32)
    path = _emit(top, "board_mx_quantize_fp4_b2_l1", work_dir)
    inputs = core_rec.stimulus(p, np.random.default_rng(5), 8)
    in_rows = pack_beats(core.i.payload.shape(), core_rec.to_beats(p, inputs))
    expected = pack_beats(core.o.payload.shape(),
                          core_rec.expected_beats(p, core_rec.golden(p, inputs)))
    assert in_rows.shape[0] == 2 * expected.shape[0]
    job = dict(in_rows=in_rows, expected=expected, divisor=DIVISOR, in_width=top.info.in_width,
               out_width=top.info.out_width, fifo_depth=top.info.fifo_depth, corrupt=0)
    run = run_cocotb(path, path.stem, "icarus", test_module="sim.tb.board_tb", ports=SIM_PORTS,
                     work_dir=work_dir, job=job, job_env=BOARD_JOB_ENV,
                     testcase="board_info,board_vectors")
    _check_run(run, 2)
    with np.load(run.run_dir / "result.npz") as r:
        assert np.array_equal(r["actual"], expected)


# ----------------------------------------------------------------------------------------------
# Bitstreams (YoWASP; ~6-8 s each warm, the first YoWASP run on a machine adds ~40 s per tool)


def test_unknown_board():
    with pytest.raises(ValueError, match="unknown board 'arty'; available: icebreaker, ulx3s"):
        build_bitstream("arty", object(), "unused")


def test_tool_env_fills_only_unset_variables():
    env = tool_env({"YOSYS": "/opt/my-yosys", "PATH": "/usr/bin"})
    assert env["YOSYS"] == "/opt/my-yosys"
    for var in ("NEXTPNR_ICE40", "ICEPACK", "NEXTPNR_ECP5", "ECPPACK"):
        assert os.path.isabs(env[var]) and os.access(env[var], os.X_OK), env[var]
    assert env["OPENFPGALOADER"] == "true"
    assert tool_env({"OPENFPGALOADER": "/usr/local/bin/openFPGALoader"})[
        "OPENFPGALOADER"] == "/usr/local/bin/openFPGALoader"


@pytest.mark.parametrize("board, ext", [("icebreaker", ".bin"), ("ulx3s", ".bit")])
def test_bitstream_builds(board, ext, tmp_path):
    path = build_bitstream(board, MXDequantize("mxfp4_e2m1", block_size=2), tmp_path / board)
    assert path.suffix == ext and path.stat().st_size > 50_000
    tim = (tmp_path / board / "top.tim").read_text()
    assert "PASS at" in tim                       # nextpnr met the board clock
    assert board in BOARDS


class _Wide(wiring.Component):
    """A register stage, ``width`` bits wide: far too many flops for a UP5K once framed."""

    def __init__(self, width):
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        move = self.o.ready | ~self.o.valid
        m.d.comb += self.i.ready.eq(move)
        with m.If(move):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        return m


def test_bitstream_that_does_not_fit_is_one_clear_line(tmp_path):
    with pytest.raises(BitstreamError) as info:
        build_bitstream("icebreaker", _Wide(1500), tmp_path / "wide", fifo_depth=1)
    message = str(info.value)
    assert message.startswith("icebreaker: design does not fit: needs ")
    assert "ICESTORM_LC" in message and "\n" not in message
    assert info.value.errors and info.value.errors[0].startswith("ERROR")



def test_resync_drops_leftovers_of_an_interrupted_session():
    dev = FakeDevice(1, 1, lambda g: [g[0]])
    link = HostLink(dev)
    dev.pending += L.encode_frame(L.TYPE_DATA, b"\x01")[:-1]          # a cut-off frame
    dev.pending += L.encode_frame(L.TYPE_ERROR, L.encode_error(L.ERR_TIMEOUT, 1))
    dev.pending += L.encode_frame(L.TYPE_DATA, b"\x02")
    assert link.resync(0.01) == 1
    assert link.take_reports() == [] and link.queued_beats == 0
    assert np.array_equal(run_vectors(link, np.array([[5], [6]], np.uint8), 1, 2), [[5], [6]])
