"""FP32 → OCP MX block quantizer (MX_SPEC §4, §11)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.common import (
    block_throughput,
    check_choice,
    check_lanes,
    check_mx_format,
    check_power_of_two,
    count_leading_zeros,
    max_tree,
    pipeline_stage,
)
from hdl.formats import ElementFormat

__all__ = ["ROUNDINGS", "ElementQuantizer", "MXQuantize", "min_shift"]

#: Element rounding modes: ``"even"`` rounds to nearest, ties to even (the default);
#: ``"nearest"`` rounds to nearest, ties away from zero (the microxcaling default).
ROUNDINGS = ("even", "nearest")


def min_shift(elem):
    """Smallest right shift from an FP32 significand's LSB to the element LSB that
    :class:`ElementQuantizer` can meet (derivation in its ``elaborate``)."""
    if elem.is_float:
        return min(23, elem.emin + 22) - elem.mbits
    return 22 - elem.frac_bits


#: Pipeline registers inside each element quantizer of MXQuantize (see ElementQuantizer).
QUANTIZER_STAGES = 2


class ElementQuantizer(wiring.Component):
    """One FP32 value → one MX element code, given the block's E8M0 scale code.

    Combinational with ``stages=0``. ``stages=2`` adds two pipeline registers, after the
    exponent arithmetic and after alignment (``en[0]`` and ``en[1]`` load them); ``stages=1``
    only the second. ``code`` then follows ``value`` ``stages`` cycles later.

    Divides the value by ``2**(scale - 127)``, rounds it once to the element grid and saturates
    to ``±max``. The sign of zero is kept for FP elements (a tiny negative gives ``-0``); INT8
    has one zero. Block-level cases (NaN/Inf anywhere, all-zero block) are the caller's job.

    FP elements are exact for any scale code 0..254 (a scale too small for the value saturates
    it, as it should). INT8 relies on the block scale rule, ``scale >= E`` for the value's FP32
    exponent field ``E`` (``emax_elem == 0``), which bounds its shifter and ``q``.

    Parameters
    ----------
    elem : ElementFormat
        Element type.
    rounding : str
        One of :data:`ROUNDINGS`.
    stages : int
        Pipeline registers inside the quantizer, 0..2 (adds the ``en`` member).

    Members
    -------
    value : In(32)
        FP32 bit pattern (finite).
    scale : In(8)
        E8M0 scale code of the block.
    code : Out(elem.width)
        Element code.
    en : In(1)
        Only with ``stages > 0``: ``en[k]`` loads pipeline register ``k`` this cycle.
    """

    def __init__(self, elem, rounding="even", *, stages=0):
        if not isinstance(elem, ElementFormat):
            raise TypeError(f"elem must be an ElementFormat, not {elem!r}")
        if stages not in (0, 1, 2) or isinstance(stages, bool):
            raise ValueError(f"stages must be 0, 1 or 2, not {stages!r}")
        self.elem = elem
        self.rounding = check_choice("rounding", rounding, ROUNDINGS)
        self.stages = stages
        members = {
            "value": In(32),
            "scale": In(8),
            "code": Out(elem.width),
        }
        if stages:
            members["en"] = In(stages)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        elem = self.elem

        sign = self.value[31]
        exp = self.value[23:31]
        sig = Cat(self.value[:23], exp != 0)       # |value| = sig * 2**(max(exp, 1) - 150)

        # |value| / 2**s = sig * 2**d, s = scale - 127: d is the weight of sig's LSB.
        d = Signal(signed(10))                     # -277..232
        m.d.comb += d.eq(Mux(exp == 0, 1, exp) - self.scale - 23)

        # Right shift from sig's LSB to the element's LSB, and its lower bound `min_shift`:
        # * FP, element-normal branch (t >= emin, t = floor(log2 |value/2**s|) = d + p, p = index
        #   of sig's leading one): shift = p - mbits. FP32 normals have p = 23. An FP32 subnormal
        #   has d = -22 - scale <= -22, so t >= emin needs p >= emin + 22.
        # * FP, element-subnormal branch (t < emin): shift = emin - mbits - d, which is
        #   > 23 - mbits for FP32 normals (d < emin - 23) and >= emin + 22 - mbits for FP32
        #   subnormals (d <= -22).
        #   Hence shift >= min(23, emin + 22) - mbits (E5M2 6, E4M3 13, E3M2 18, E2M3 19,
        #   E2M1 21), using only scale >= 0. In both branches q < 2**(mbits + 1).
        # * INT8 (LSB weight 2**-6): shift = -6 - d. The block scale satisfies
        #   scale >= exp - emax_elem = exp, so d <= -23 for FP32 normals and d <= -22 with
        #   sig < 2**23 for subnormals: shift >= 16 and q < 2**7 before rounding.
        shift_raw = Signal(signed(11))
        if elem.is_float:
            p = Signal(signed(6))                  # -1 for zero
            m.d.comb += p.eq(23 - count_leading_zeros(sig))
        if self.stages == 2:
            # First cut: after the scale subtraction and the leading-zero count.
            regs = [(d, Signal.like(d, name="d_q")), (sig, Signal(24, name="sig_q")),
                    (sign, Signal(name="sign_q"))]
            if elem.is_float:
                regs.append((p, Signal.like(p, name="p_q")))
            with m.If(self.en[0]):
                m.d.sync += [r.eq(v) for v, r in regs]
            d, sig, sign = regs[0][1], regs[1][1], regs[2][1]
            if elem.is_float:
                p = regs[3][1]
        if elem.is_float:
            t = Signal(signed(11))
            normal = Signal()
            m.d.comb += [
                t.eq(d + p),
                normal.eq(t >= elem.emin),
                shift_raw.eq(Mux(normal, p - elem.mbits, elem.emin - elem.mbits - d)),
            ]
            q_bits = elem.mbits + 1
        else:
            m.d.comb += shift_raw.eq(-elem.frac_bits - d)
            q_bits = elem.width                    # one bit spare

        # Bits of sig below `base` always lie below the round bit, so only `window` goes through
        # the shifter: k = shift - min_shift puts the round bit at bit 0 and q above it. Shifts
        # of 25 or more (k >= len(window)) leave nothing: q = 0 with round = 0, as they should.
        base = min_shift(elem) - 1
        window = sig[base:]
        k = Signal(range(len(window) + 1))
        k_raw = shift_raw - min_shift(elem)
        m.d.comb += k.eq(Mux(k_raw > len(window), len(window), k_raw[:len(k)]))
        aligned = Signal(len(window))
        m.d.comb += aligned.eq(window >> k)
        under_round = Cat(k > i for i in range(len(window)))   # window bits below the round bit
        sticky = Signal()
        m.d.comb += sticky.eq(sig[:base].any() | (window & under_round).any())
        if elem.is_float:
            # Exponent field minus one (0 for element subnormals, as emin + bias - 1 == 0); the
            # rounded q carries its own leading one, so a rounding carry moves into the exponent.
            exp_field = Signal(9)
            m.d.comb += exp_field.eq(Mux(normal, t + (elem.bias - 1), 0))

        if self.stages:
            # Last cut: between alignment (shift amount, barrel shifter, sticky) and rounding
            # (round, add, saturate).
            aligned_q = Signal(1 + q_bits)
            sticky_q, sign_q = Signal(), Signal()
            with m.If(self.en[-1]):
                m.d.sync += [aligned_q.eq(aligned[:1 + q_bits]), sticky_q.eq(sticky),
                             sign_q.eq(sign)]
            sticky, sign = sticky_q, sign_q
            if elem.is_float:
                exp_field_q = Signal(9)
                with m.If(self.en[-1]):
                    m.d.sync += exp_field_q.eq(exp_field)
                exp_field = exp_field_q
        else:
            aligned_q = aligned
        round_bit = aligned_q[0]
        q = aligned_q[1:1 + q_bits]
        if self.rounding == "even":
            increment = round_bit & (sticky | q[0])
        else:                                      # "nearest": ties away from zero
            increment = round_bit
        q_rounded = Signal(q_bits + 1)
        m.d.comb += q_rounded.eq(q + increment)

        if elem.is_float:
            magnitude = Signal(9 + elem.mbits + 1)
            m.d.comb += magnitude.eq((exp_field << elem.mbits) + q_rounded)
            saturated = Mux(magnitude > elem.max_code, elem.max_code, magnitude)
            m.d.comb += self.code.eq(Cat(saturated[:elem.width - 1], sign))
        else:
            saturated = Signal(elem.width - 1)
            m.d.comb += saturated.eq(Mux(q_rounded > elem.max_code, elem.max_code, q_rounded))
            m.d.comb += self.code.eq(Mux(sign, -saturated, saturated))
        return m


class MXQuantize(wiring.Component):
    """Quantize a stream of FP32 values into OCP MX blocks.

    Scale rule (MX_SPEC §4, §11): the E8M0 scale code is ``max(E_max - emax_elem, 0)``, ``E_max``
    being the largest FP32 exponent field in the block (subnormals and zeros count as 0). That is
    ``s + 127`` for ``s = floor(log2 max|v|) - emax_elem`` clamped to ``>= -127``; ``s <= 127``
    holds for every finite input. A NaN or ±Inf anywhere in the block gives scale ``0xFF`` and all
    codes 0; an all-zero block (``-0`` included) gives scale 0 and all codes 0. Elements are
    ``v / 2**s`` rounded once (``rounding``) and saturated to ``±max`` (see
    :class:`ElementQuantizer`).

    Pipeline: beats ``0 .. n-2`` of a block (``n = block_size // lanes``) collect in a staging
    shift register together with the running maximum exponent and the NaN / non-zero flags; the
    last beat moves the whole block and its scale into the block register; ``block_size``
    element quantizers, each cut by two registers (after the exponent arithmetic and after
    alignment: the middle stages), feed the output register. One input beat per cycle is
    sustained while ``o.ready`` is high; ``i.ready`` depends combinationally on ``o.ready``.

    Parameters
    ----------
    fmt : str or MXFormat
        One of ``mxfp8_e5m2``, ``mxfp8_e4m3``, ``mxfp6_e3m2``, ``mxfp6_e2m3``, ``mxfp4_e2m1``,
        ``mxint8``.
    block_size : int
        Elements per block: a power of two in 2..64.
    rounding : str
        ``"even"`` (round to nearest, ties to even) or ``"nearest"`` (ties away from zero).
    lanes : int or None
        FP32 values per input beat: a power of two dividing ``block_size`` (default
        ``block_size``).

    Attributes
    ----------
    latency : int
        Cycles from the handshake of a block's last input beat to its output beat being valid
        (with ``o.ready`` high): 4.
    beats_per_block : int
        Input beats per block, ``block_size // lanes``.
    throughput : str
        Description of the sustained rate.

    Members
    -------
    i : In(stream.Signature(StructLayout({"values": ArrayLayout(unsigned(32), lanes)})))
        FP32 bit patterns; element ``j`` of beat ``b`` is block element ``b * lanes + j``.
    o : Out(stream.Signature(StructLayout({"scale": unsigned(8),
                                           "codes": ArrayLayout(unsigned(width), block_size)})))
        One beat per block.
    """

    def __init__(self, fmt, block_size=32, rounding="even", lanes=None):
        self.fmt = check_mx_format(fmt)
        self.block_size = check_power_of_two("block_size", block_size, 2, 64)
        self.rounding = check_choice("rounding", rounding, ROUNDINGS)
        self.lanes = check_lanes(lanes, block_size)
        self.elem = self.fmt.element
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "values": data.ArrayLayout(unsigned(32), self.lanes),
            }))),
            "o": Out(stream.Signature(data.StructLayout({
                "scale": unsigned(8),
                "codes": data.ArrayLayout(unsigned(self.elem.width), self.block_size),
            }))),
        })

    @property
    def beats_per_block(self):
        return self.block_size // self.lanes

    @property
    def latency(self):
        return 2 + QUANTIZER_STAGES                # block register, middle stages, output

    @property
    def throughput(self):
        return block_throughput("input", self.lanes, self.beats_per_block)

    def elaborate(self, platform):
        m = Module()
        n = self.beats_per_block
        lanes = self.lanes
        beat = self.i.payload.values

        # This beat's contribution to the block statistics.
        beat_exp = max_tree(beat[j][23:31] for j in range(lanes))
        beat_nan = Cat(beat[j][23:31] == 0xFF for j in range(lanes)).any()
        beat_nonzero = Cat(beat[j][:31].any() for j in range(lanes)).any()

        # Block register (stage 1) and output register (stage 2).
        blk_valid = Signal()
        # Data registers need no reset: they are only read behind their valid bit.
        blk_values = Signal(data.ArrayLayout(unsigned(32), self.block_size), reset_less=True)
        blk_scale = Signal(8, reset_less=True)
        blk_clear = Signal(reset_less=True)        # NaN/Inf or all-zero block: every code 0

        # Two middle stages carry the scale and the clear flag alongside the element quantizers'
        # internal pipeline registers (QUANTIZER_STAGES of them).
        mid_valid = [Signal(name=f"mid{k}_valid") for k in range(QUANTIZER_STAGES)]
        mid_clear = [Signal(name=f"mid{k}_clear") for k in range(QUANTIZER_STAGES)]
        mid_scale = [Signal(8, name=f"mid{k}_scale") for k in range(QUANTIZER_STAGES)]
        mid_load = [None] * QUANTIZER_STAGES
        o_ready, o_load = pipeline_stage(m, valid=self.o.valid, valid_in=mid_valid[-1],
                                         ready_out=self.o.ready, name="out")
        ready_out = o_ready
        for k in reversed(range(QUANTIZER_STAGES)):
            ready_out, mid_load[k] = pipeline_stage(
                m, valid=mid_valid[k], valid_in=mid_valid[k - 1] if k else blk_valid,
                ready_out=ready_out, name=f"mid{k}")
        mid_ready = ready_out

        if n == 1:
            last = Const(1)
            block = beat.as_value()
            acc_exp, acc_nan, acc_nonzero = beat_exp, beat_nan, beat_nonzero
        else:
            count = Signal(range(n))
            last = count == n - 1
            # Running statistics of beats 0 .. count-1; back to 0 (the identity) after a block.
            run_exp = Signal(8)
            run_nan = Signal()
            run_nonzero = Signal()
            acc_exp = Mux(run_exp > beat_exp, run_exp, beat_exp)
            acc_nan = run_nan | beat_nan
            acc_nonzero = run_nonzero | beat_nonzero
            staging = [Signal(32 * lanes, name=f"staging{k}", reset_less=True)
                       for k in range(n - 1)]
            block = Cat(*staging, beat.as_value())

        blk_ready, blk_load = pipeline_stage(m, valid=blk_valid, valid_in=self.i.valid & last,
                                             ready_out=mid_ready, name="blk")
        m.d.comb += self.i.ready.eq(~last | blk_ready)

        if n > 1:
            with m.If(self.i.valid & self.i.ready):
                with m.If(last):
                    m.d.sync += [count.eq(0), run_exp.eq(0), run_nan.eq(0), run_nonzero.eq(0)]
                with m.Else():
                    m.d.sync += [
                        Cat(*staging).eq(Cat(*staging[1:], beat.as_value())),
                        count.eq(count + 1),
                        run_exp.eq(acc_exp),
                        run_nan.eq(acc_nan),
                        run_nonzero.eq(acc_nonzero),
                    ]

        emax = self.elem.emax
        with m.If(blk_load):
            m.d.sync += [
                blk_values.eq(block),
                blk_scale.eq(Mux(acc_nan, 0xFF, Mux(acc_exp > emax, acc_exp - emax, 0))),
                blk_clear.eq(acc_nan | ~acc_nonzero),
            ]

        for k in range(QUANTIZER_STAGES):
            with m.If(mid_load[k]):
                m.d.sync += [mid_scale[k].eq(mid_scale[k - 1] if k else blk_scale),
                             mid_clear[k].eq(mid_clear[k - 1] if k else blk_clear)]
        codes = []
        for j in range(self.block_size):
            quantizer = ElementQuantizer(self.elem, self.rounding, stages=QUANTIZER_STAGES)
            m.submodules[f"element{j}"] = quantizer
            m.d.comb += [quantizer.value.eq(blk_values[j]), quantizer.scale.eq(blk_scale),
                         quantizer.en.eq(Cat(*mid_load))]
            codes.append(Mux(mid_clear[-1], 0, quantizer.code))

        with m.If(o_load):
            m.d.sync += [
                self.o.payload.scale.eq(mid_scale[-1]),
                self.o.payload.codes.eq(Cat(*codes)),
            ]
        return m
