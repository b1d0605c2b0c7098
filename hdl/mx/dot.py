"""MX dot product across blocks (``DotGeneral``, MX_SPEC §6, §11): block pairs in, one FP32 result
per group out."""

import re

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.common import (
    check_choice,
    check_mx_format,
    check_power_of_two,
    is_int,
    is_power_of_two,
)
from hdl.common.ecp5_mux import MUXES
from hdl.common.fp32 import ADD_CUTS
from hdl.common.pipeline import delay
from hdl.common.stream_shell import RESULT_RAMS, extra_read_cycles, stream_shell
from hdl.formats import MX_FORMAT_SETS, MX_FORMATS, MXFormatSet

from .block_dot import BlockDotProduct, block_sum_width, tree_levels
from .exact_accumulator import ExactAccumulator
from .fp32_accumulator import FP32Accumulator

__all__ = ["ACCUM_MODES", "DotDatapath", "MXDot", "block_beats", "check_dot_formats",
           "resolve_pipeline"]

ACCUM_MODES = ("exact", "fp32")

#: Target clock -> adder-tree levels between registers and RoundToFP32 stages, from ECP5-85F
#: place-and-route of mx-dot (nextpnr 0.11): one ~20-bit adder level with routing fits 5 ns.
_FREQUENCY_MODEL = ((180, 1, 6, 2), (120, 2, 3, 1), (80, 3, 2, 1), (0, 64, 1, 1))


def resolve_pipeline(pipeline, block_size):
    """``pipeline`` (a register-stage count or a target frequency) -> ``(tree_stages,
    round_stages, product_stages)``.

    Parameters
    ----------
    pipeline : int or str
        An integer ``k`` in ``0 .. tree_levels(block_size)``: registers after every
        ``levels / k`` adder-tree levels (and 2 rounding stages); or ``"<N>mhz"``: the stages the
        frequency model places for an N MHz clock on ECP5 (``"200mhz"`` registers every tree
        level).
    block_size : int
        Products the adder tree sums (the datapath's ``lanes``).
    """
    levels = tree_levels(block_size)
    if is_int(pipeline):
        if not 0 <= pipeline <= levels:
            raise ValueError(f"pipeline must be a stage count in 0..{levels} (block_size "
                             f"{block_size}) or a frequency like '200mhz', not {pipeline!r}")
        return pipeline, 2, 1
    text = pipeline.strip().lower() if isinstance(pipeline, str) else None
    match = re.fullmatch(r"(\d+)\s*mhz", text or "")
    if text is not None and text.isdigit():
        return resolve_pipeline(int(text), block_size)
    if not match or not 1 <= int(match[1]) <= 1000:
        raise ValueError(f"pipeline must be a stage count in 0..{levels} or a frequency "
                         f"'<1..1000>mhz' (e.g. '200mhz'), not {pipeline!r}")
    mhz = int(match[1])
    for floor, per_stage, round_stages, product_stages in _FREQUENCY_MODEL:
        if mhz >= floor:
            tree = -(-levels // per_stage) if per_stage < levels else 0
            return tree, round_stages, product_stages
    raise AssertionError(mhz)


def check_dot_formats(a_format, b_format):
    """``(a_format, b_format)`` as :class:`~hdl.formats.MXFormat` or, selectable per block,
    :class:`~hdl.formats.MXFormatSet`: a set (``MX_FORMAT_SETS``) goes on both operands, the same
    one (each operand's format is still chosen per block), the configurations that are tested."""
    def lookup(fmt, name):
        if isinstance(fmt, MXFormatSet) and fmt in MX_FORMAT_SETS.values():
            return fmt
        if isinstance(fmt, str) and fmt in MX_FORMAT_SETS:
            return MX_FORMAT_SETS[fmt]
        try:
            return check_mx_format(fmt, name=name)
        except ValueError:
            raise ValueError(f"{name} must be one of {', '.join(MX_FORMATS)} or a format set "
                             f"({', '.join(MX_FORMAT_SETS)}); not {fmt!r}") from None

    a, b = lookup(a_format, "a_format"), lookup(b_format, "b_format")
    if (isinstance(a, MXFormatSet) or isinstance(b, MXFormatSet)) and a != b:
        raise ValueError(f"a_format={a.name} with b_format={b.name}: a format set must be both "
                         f"operands' (a_format=b_format, one of {', '.join(MX_FORMAT_SETS)})")
    return a, b


def block_beats(m, i, beats):
    """Where the blocks of a stream of ``beats`` beats per block end, for :func:`stream_shell`.

    Returns ``(last, ends)``: ``last`` is ``i.payload.last`` on a block's final beat and 0 on its
    other beats (the shell's ``last``: a group ends only with a whole block); ``ends`` holds the
    datapath's ``end`` control bit, a register that marks the beat the shell offers as its
    block's final one. ``(None, ())`` for one beat per block (no ``end`` bit).
    """
    if beats == 1:
        return None, ()
    take = i.valid & i.ready
    phase = Signal(range(beats), name="block_phase")        # beat of its block the next take is
    at_end = phase == beats - 1
    with m.If(take):
        m.d.sync += phase.eq(Mux(at_end, 0, phase + 1))
    end = Signal(name="in_end")
    m.d.sync += end.eq(at_end)                  # registered beside the shell's input register
    return i.payload.last & at_end, (end,)


class DotDatapath(wiring.Component):
    """Free-running block-dot datapath: :class:`BlockDotProduct` then the ``accum`` accumulator.

    The processing element of :class:`MXDot` and of every PE of ``MXArray``.

    With ``lanes`` below ``block_size`` a block pair arrives as ``block_size / lanes`` beats of
    ``lanes`` element pairs: the :class:`BlockDotProduct` sums one beat, and a block-sum
    register adds the beats' sums (exact integers, in the block's full §6 width) before the
    block goes to the accumulator, so every result is the one a full block per beat gives.

    Parameters
    ----------
    a_format, b_format, block_size, accum, pipeline, multipliers, adders, muxes, lanes :
        As for :class:`MXDot`.

    Members
    -------
    a, b : In(8 + lanes * width)
        Scale code (low 8 bits) then the beat's element codes.
    control : In(3), or In(4) with ``lanes < block_size``
        ``valid``, ``first``, ``last`` of the beat (``first`` on a group's first beat, ``last``
        on its final beat), then ``end``: the beat ends its block.
    o_valid : Out(1)
        A group's result, :attr:`latency` cycles after its last beat.
    o : Out(32)
    """

    def __init__(self, a_format, b_format, block_size=32, accum="exact", pipeline="200mhz",
                 multipliers="dsp", adders="generic", muxes="generic", lanes=None,
                 accumulator=True):
        self.a_format, self.b_format = check_dot_formats(a_format, b_format)
        if not (is_power_of_two(block_size) and 2 <= block_size <= 64):
            raise ValueError(f"block_size must be a power of two in 2..64, not {block_size!r}")
        self.block_size = block_size
        self.lanes = check_power_of_two("lanes", block_size if lanes is None else lanes, 2,
                                        block_size)
        self.beats = block_size // self.lanes          # beats per block pair
        self.accum = check_choice("accum", accum, ACCUM_MODES)
        if check_choice("muxes", muxes, MUXES) != "generic" and accum != "exact":
            raise ValueError(f"muxes={muxes!r} builds the exact accumulator's candidate chain; "
                             f"with accum={accum!r} there is none: use muxes='generic'")
        self.pipeline = pipeline
        tree_stages, round_stages, product_stages = resolve_pipeline(pipeline, self.lanes)
        a_elem, b_elem = self.a_format.element, self.b_format.element
        self.block_dot = BlockDotProduct(a_elem, b_elem, self.lanes, tree_stages=tree_stages,
                                         multipliers=multipliers, product_stages=product_stages,
                                         adders=adders)
        width = block_sum_width(a_elem, b_elem, block_size)
        self._accumulator_args = (width, a_elem.lsb_exp + b_elem.lsb_exp, round_stages, adders,
                                  muxes)
        self.accumulator = self.make_accumulator() if accumulator else None
        self.block_sum_width = width
        # A format set's per-block index rides above the codes.
        self.sel_bits = (a_elem.sel_bits if isinstance(self.a_format, MXFormatSet) else 0,
                         b_elem.sel_bits if isinstance(self.b_format, MXFormatSet) else 0)
        # Without an accumulator the finished blocks go out (to one that several PEs share).
        outputs = ({"o_valid": Out(1), "o": Out(32)} if accumulator else
                   {"block_valid": Out(1), "block_first": Out(1), "block_last": Out(1),
                    "block_sum": Out(signed(width)), "block_scale_sum": Out(9),
                    "block_nan": Out(1)})
        super().__init__({
            "a": In(8 + self.lanes * a_elem.width + self.sel_bits[0]),
            "b": In(8 + self.lanes * b_elem.width + self.sel_bits[1]),
            "control": In(3 if self.beats == 1 else 4),
            **outputs,
        })

    def make_accumulator(self, contexts=1):
        """The ``accum`` accumulator of this datapath; ``contexts`` > 1 (exact only): one that
        the interleaved blocks of that many datapaths share (see :class:`ExactAccumulator`)."""
        width, lsb_exp, round_stages, adders, muxes = self._accumulator_args
        if self.accum == "exact":
            return ExactAccumulator(width, lsb_exp, round_stages=round_stages, adders=adders,
                                    muxes=muxes, contexts=contexts)
        if contexts != 1:
            raise ValueError(f"contexts={contexts!r}: only the exact accumulator has contexts")
        # A block every `beats` cycles: that many cycles for each FP32 add of the loop.
        return FP32Accumulator(width, lsb_exp, round_stages=round_stages,
                               add_stages=min(self.beats - 1, len(ADD_CUTS) - 1))

    @property
    def block_latency(self):
        """Cycles from a block's last beat at the inputs to the block at the accumulator."""
        return self.block_dot.latency + (self.beats > 1)

    @property
    def latency(self):
        """Cycles from a group's last beat at the inputs to ``o_valid``."""
        return self.block_latency + self.accumulator.latency

    @property
    def details(self):
        """Derived sizes, for the manifest: widths, register placement, accumulator capacity."""
        return self.details_with(self.accumulator)

    def details_with(self, acc):
        """:attr:`details` with ``acc`` as the accumulator (one shared by several PEs)."""
        out = {
            "lanes": self.lanes,
            "beats_per_block": self.beats,
            "block_sum_bits": self.block_sum_width,
            "product_stages": self.block_dot.product_stages,
            "tree_stages": self.block_dot.tree_stages,
            "round_stages": acc.rounder.latency,
            "multipliers": self.block_dot.multipliers,
            "accumulator": self.accum,
        }
        if self.accum == "fp32":
            out.update(fp32_add_stages=acc.adder.stages)
        if self.accum == "exact":
            out.update(accumulator_bits=acc.width, accumulator_pieces=acc.chunks,
                       max_group_blocks=acc.max_blocks, adders=acc.adders, muxes=acc.muxes)
        return out

    def elaborate(self, platform):
        m = Module()
        m.submodules.block_dot = bd = self.block_dot
        codes = [8 + len(bd.a_codes), 8 + len(bd.b_codes)]
        m.d.comb += [
            bd.a_scale.eq(self.a[:8]), bd.a_codes.eq(self.a[8:codes[0]]),
            bd.b_scale.eq(self.b[:8]), bd.b_codes.eq(self.b[8:codes[1]]),
        ]
        for side, port, end, bits in (("a", self.a, codes[0], self.sel_bits[0]),
                                      ("b", self.b, codes[1], self.sel_bits[1])):
            if bits:
                m.d.comb += getattr(bd, f"{side}_sel").eq(port[end:])
        control = delay(m, self.control, bd.latency, "bd")
        valid, first, last = control[0], control[1], control[2]
        block_sum, scale_sum, nan = bd.sum, bd.scale_sum, bd.nan
        if self.beats > 1:
            valid, first, last, block_sum, scale_sum, nan = self._block_sum(
                m, valid, first, last, control[3])
        if self.accumulator is None:
            m.d.comb += [
                self.block_valid.eq(valid), self.block_first.eq(first),
                self.block_last.eq(last), self.block_sum.eq(block_sum),
                self.block_scale_sum.eq(scale_sum), self.block_nan.eq(nan),
            ]
            return m
        m.submodules.accumulator = acc = self.accumulator
        m.d.comb += [
            acc.valid.eq(valid), acc.first.eq(first), acc.last.eq(last),
            acc.sum.eq(block_sum), acc.scale_sum.eq(scale_sum), acc.nan.eq(nan),
            self.o_valid.eq(acc.o_valid), self.o.eq(acc.o),
        ]
        return m

    def _block_sum(self, m, valid, first, last, end):
        """A block's beat sums added up (one register, one cycle): the block, as the
        accumulator takes it, the cycle after its ``end`` beat."""
        bd = self.block_dot
        part = Signal(signed(self.block_sum_width), name="block_part")
        part_nan = Signal(name="block_part_nan")
        fresh = Signal(init=1, name="block_fresh")     # the next beat starts a block
        group_first = Signal(name="block_group_first")  # the block being summed starts a group
        with m.If(valid):
            m.d.sync += [
                part.eq(Mux(fresh, 0, part) + bd.sum),
                part_nan.eq((part_nan & ~fresh) | bd.nan),
                fresh.eq(end),
                group_first.eq(Mux(fresh, first, group_first)),
            ]
        out_valid, out_first, out_last = (Signal(name=f"block_{n}")
                                          for n in ("valid", "first", "last"))
        out_scale = Signal.like(bd.scale_sum, name="block_scale_sum")
        m.d.sync += [
            out_valid.eq(valid & end),
            out_first.eq(Mux(fresh, first, group_first)),
            out_last.eq(last),
            out_scale.eq(bd.scale_sum),
        ]
        return out_valid, out_first, out_last, part, out_scale, part_nan


class MXDot(wiring.Component):
    """Dot product of MX vectors: one pair of MX blocks per beat, one FP32 result per group.

    Each input beat carries an A block and a B block (E8M0 scale + ``block_size`` element codes,
    formats chosen independently) and ``last``, which ends the group. The result of a group is
    ``sum_j 2**(s_Aj + s_Bj) * sum_i A_ji * B_ji`` rounded to FP32 as ``accum`` says (MX_SPEC
    §11): ``"exact"`` accumulates every product exactly across the group and rounds once (RNE);
    ``"fp32"`` rounds every block sum to FP32 and adds them in order, RNE after every add. A NaN
    scale or NaN element (E5M2: also ±Inf) anywhere in a group gives ``0x7FC00000``.

    Full rate: one block pair per cycle, any group length. The datapath is free-running; results
    go through an output FIFO and ``i.ready`` falls only when the FIFO could not take every result
    still in flight (:func:`hdl.common.stream_shell.stream_shell`), so ``o.ready`` never reaches
    the datapath.

    With ``lanes`` below ``block_size`` each beat carries ``lanes`` element pairs of the block
    pair and a block pair takes ``block_size / lanes`` beats (one beat per cycle): a block's
    element ``j`` is in its beat ``j // lanes``, every beat of a block carries the block's
    scales (they are read on its final beat) and ``last`` counts on a block's final beat only.
    Products and adder tree shrink to ``lanes`` element pairs; the results do not change.

    Parameters
    ----------
    a_format, b_format : str
        MX format names (``hdl.formats.MX_FORMATS``), or both the same format set
        (``hdl.formats.MX_FORMAT_SETS``: ``"mxfp8"``, ``"mxfp6"``, ``"mxall"``): then each beat
        also carries ``a_sel`` and ``b_sel``, the index of each block's format in the set (chosen
        per block pair, independently for A and B; all beats of a block carry the same), and
        each element code sits in the low bits of a slot as wide as the set's widest code. An
        index past the set's members makes the group's result NaN. Products are always built
        in logic (``multipliers`` only concerns INT8 x INT8).
    block_size : int
        Elements per block, a power of two in 2..64.
    accum : {"exact", "fp32"}
    pipeline : int or str
        Register placement, see :func:`resolve_pipeline`.
    multipliers : {"dsp", "lut", "ecp5-dsp"}
        INT8 x INT8 products in DSP blocks or in logic (see :class:`BlockDotProduct`).
    adders : {"generic", "ecp5-ccu2c"}
        Inferred adders (any device), or ECP5 carry chains that do more in their own LUT4s (ECP5
        only): the first level of the block's adder tree applies the products' signs (see
        :class:`BlockDotProduct`), and the exact accumulator's pieces clear themselves (see
        :class:`ExactAccumulator`).
    muxes : {"generic", "ecp5-pfumx"}
        The exact accumulator's candidate chain (``accum="exact"`` only): inferred 2:1 muxes,
        one piece per stage (any device), or ECP5 4:1 muxes of two LUT4s and a PFUMX, three
        pieces per stage (ECP5 only): fewer LUT4s, one cycle more latency (see
        :class:`ExactAccumulator`).
    fifo : {"generic", "ecp5-ebr"}
        The result FIFO: an inferred memory behind an output register (LUT RAM on ECP5, block
        RAM on iCE40; any device), or an ECP5 DP16KD block RAM whose own output register drives
        ``o`` (ECP5 only): no LUT4s for the FIFO's storage, read mux and output register, one
        cycle more latency (see :func:`hdl.common.stream_shell.stream_shell`).
    lanes : int or None
        Element pairs per beat, a power of two in ``2..block_size``; ``None`` (default) is
        ``block_size``, one block pair per beat. Fewer lanes: fewer multipliers and a smaller
        adder tree, one block pair every ``block_size / lanes`` cycles, one cycle more latency.

    Members
    -------
    i : In(stream.Signature(StructLayout(a_scale, b_scale, a_codes[lanes], b_codes[lanes],
        [a_sel, b_sel,] last)))
    o : Out(stream.Signature(StructLayout(result: 32)))
    """

    def __init__(self, a_format, b_format, block_size=32, accum="exact", pipeline="200mhz",
                 multipliers="dsp", adders="generic", muxes="generic", fifo="generic",
                 lanes=None):
        self.datapath = DotDatapath(a_format, b_format, block_size, accum, pipeline,
                                    multipliers, adders, muxes, lanes)
        self.lanes, self.beats = self.datapath.lanes, self.datapath.beats
        self.fifo = check_choice("fifo", fifo, RESULT_RAMS)
        self.a_format, self.b_format = self.datapath.a_format, self.datapath.b_format
        self.block_size, self.accum, self.pipeline = block_size, accum, pipeline
        # Results in flight are bounded by the datapath latency: size the FIFO so a consumer
        # that is always ready never throttles the input. A group's credit is out from its last
        # beat until the cycle after its result leaves the output register, latency + 4 cycles
        # (one entry fewer stalls the full-rate test; one more can cost a bank of LUT RAM and
        # its read mux: MXINT8 at 49 entries +32 LUT4). With fifo="ecp5-ebr" the read takes a
        # cycle more, and stream_shell adds the entry for it.
        self.fifo_depth = self.datapath.latency + 4
        a_w, b_w = self.a_format.element.width, self.b_format.element.width
        sels = {f"{side}_sel": bits for side, bits in zip("ab", self.datapath.sel_bits) if bits}
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "a_scale": 8,
                "b_scale": 8,
                "a_codes": data.ArrayLayout(a_w, self.lanes),
                "b_codes": data.ArrayLayout(b_w, self.lanes),
                **sels,
                "last": 1,
            }))),
            "o": Out(stream.Signature(data.StructLayout({"result": 32}))),
        })

    @property
    def sum_width(self):
        """Width of the exact in-block sum (MX_SPEC §6)."""
        return self.datapath.block_sum_width

    @property
    def latency(self):
        """Cycles from the handshake of a group's last beat to its result on ``o`` (``o.ready``
        held high): input register, datapath, FIFO, output register (with ``fifo="ecp5-ebr"``
        the block RAM's address and output registers)."""
        return 1 + self.datapath.latency + 1 + 1 + extra_read_cycles(self.fifo)

    @property
    def throughput(self):
        if self.beats == 1:
            return "1 block pair per cycle (any group length); 1 result per group"
        return (f"1 beat per cycle ({self.lanes} element pairs), 1 block pair every "
                f"{self.beats} cycles (any group length); 1 result per group")

    @property
    def details(self):
        return {**self.datapath.details, "fifo": self.fifo,
                "result_fifo_depth": self.fifo_depth + extra_read_cycles(self.fifo)}

    def elaborate(self, platform):
        m = Module()
        m.submodules.datapath = dp = self.datapath
        group_last, ends = block_beats(m, self.i, self.beats)
        valid, first, last, payload = stream_shell(
            m, self.i, self.o, result_valid=dp.o_valid, result=dp.o, depth=self.fifo_depth,
            last=group_last, output_register=True, ram=self.fifo)
        sel = {side: ([getattr(payload, f"{side}_sel")] if bits else [])
               for side, bits in zip("ab", dp.sel_bits)}
        m.d.comb += [
            dp.a.eq(Cat(payload.a_scale, payload.a_codes.as_value(), *sel["a"])),
            dp.b.eq(Cat(payload.b_scale, payload.b_codes.as_value(), *sel["b"])),
            dp.control.eq(Cat(valid, first, last, *ends)),
        ]
        return m
