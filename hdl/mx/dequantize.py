"""OCP MX block → FP32 dequantizer (MX_SPEC §1–§3, §11)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.common import (
    block_throughput,
    check_lanes,
    check_mx_format,
    check_power_of_two,
    count_leading_zeros,
    pipeline_stage,
)
from hdl.formats import ElementFormat

__all__ = ["QNAN", "ElementDecoder", "MXDequantize"]

#: FP32 bit pattern every NaN result takes: the canonical positive quiet NaN.
QNAN = 0x7FC00000


class ElementDecoder(wiring.Component):
    """One MX element code times its E8M0 scale → FP32 bits (combinational, exact).

    ``value = 2**(scale - 127) * element``. Every finite product is representable in FP32, FP32
    subnormals included: the smallest magnitude is the E5M2 LSB at scale 0, ``2**-16 * 2**-127 =
    2**-143 >= 2**-149``, and a product with at most 8 significant bits whose LSB weight is
    ``>= 2**-149`` loses nothing when shifted into the subnormal range. Products of ``2**128`` or
    more (e.g. ``6 * 2**127``) become ``±Inf``, which is what IEEE round-to-nearest-even overflow
    gives. Scale 255 or an element NaN gives :data:`QNAN`; an E5M2 ±Inf stays ±Inf; FP ±0 keeps
    its sign; INT8 0 is +0.0 and INT8 0x80 is -2.0.

    Parameters
    ----------
    elem : ElementFormat
        Element type.

    Members
    -------
    code : In(elem.width)
        Element code.
    scale : In(8)
        E8M0 scale code.
    value : Out(32)
        FP32 bit pattern.
    """

    def __init__(self, elem):
        if not isinstance(elem, ElementFormat):
            raise TypeError(f"elem must be an ElementFormat, not {elem!r}")
        self.elem = elem
        super().__init__({
            "code": In(elem.width),
            "scale": In(8),
            "value": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        elem = self.elem
        code = self.code
        sign = code[elem.width - 1]

        # |element| = sig * 2**exp_lsb, sig's leading one at or below bit `top`.
        if elem.is_float:
            top = elem.mbits
            exp = code[elem.mbits:elem.mbits + elem.ebits]
            mant = code[:elem.mbits]
            exp_ones = exp == (1 << elem.ebits) - 1
            is_nan = exp_ones & Cat(mant == k for k in elem.nan_mantissas).any()
            is_inf = exp_ones & (mant == 0) if elem.has_inf else Const(0)
            sig = Cat(mant, exp != 0)
            exp_lsb = Mux(exp == 0, 1, exp) - (elem.bias + elem.mbits)
        else:
            top = elem.width - 1                   # |-128| = 128 needs all 8 bits
            is_nan = is_inf = Const(0)
            sig = Signal(elem.width)
            m.d.comb += sig.eq(Mux(sign, -code.as_signed(), code))
            exp_lsb = -elem.frac_bits

        lz = Signal(range(top + 2))
        norm = Signal(top + 1)                     # sig with its leading one at bit `top`
        biased = Signal(signed(11))                # FP32 biased exponent of the product
        m.d.comb += [
            lz.eq(count_leading_zeros(sig)),
            norm.eq(sig << lz),
            biased.eq(exp_lsb + top - lz + self.scale),
        ]
        significand = Cat(Const(0, 23 - top), norm)        # 24 bits, leading one at bit 23
        # Subnormal result (biased <= 0): shift right by 1 - biased, at most bias + mbits = 17
        # (E5M2 LSB at scale 0) or 7 (INT8); the bits shifted out are zeros, as argued above.
        subnormal_shift = Signal(5)
        m.d.comb += subnormal_shift.eq(1 - biased)

        with m.If((self.scale == 0xFF) | is_nan):
            m.d.comb += self.value.eq(QNAN)
        with m.Elif(is_inf):
            m.d.comb += self.value.eq(Cat(Const(0, 23), Const(0xFF, 8), sign))
        with m.Elif(sig == 0):
            m.d.comb += self.value.eq(Cat(Const(0, 31), sign))
        with m.Elif(biased >= 0xFF):
            m.d.comb += self.value.eq(Cat(Const(0, 23), Const(0xFF, 8), sign))
        with m.Elif(biased >= 1):
            m.d.comb += self.value.eq(Cat(significand[:23], biased[:8], sign))
        with m.Else():
            m.d.comb += self.value.eq(Cat((significand >> subnormal_shift)[:23], Const(0, 8),
                                          sign))
        return m


class MXDequantize(wiring.Component):
    """Expand a stream of OCP MX blocks into FP32 values.

    Each element becomes ``2**(scale - 127) * element`` as FP32 bits (see
    :class:`ElementDecoder` for the special cases).

    Pipeline: the input block is registered; a beat counter walks it ``lanes`` elements at a time
    (a shift register, so no wide multiplexer); the decoded group goes to the output register.
    One output beat per cycle is sustained while ``o.ready`` is high; ``i.ready`` depends
    combinationally on ``o.ready``.

    Parameters
    ----------
    fmt : str or MXFormat
        One of ``mxfp8_e5m2``, ``mxfp8_e4m3``, ``mxfp6_e3m2``, ``mxfp6_e2m3``, ``mxfp4_e2m1``,
        ``mxint8``.
    block_size : int
        Elements per block: a power of two in 2..64.
    lanes : int or None
        FP32 values per output beat: a power of two dividing ``block_size`` (default
        ``block_size``).

    Attributes
    ----------
    latency : int
        Cycles from the handshake of an input block to its first output beat being valid (with
        ``o.ready`` high): 2.
    beats_per_block : int
        Output beats per block, ``block_size // lanes``.
    throughput : str
        Description of the sustained rate.

    Members
    -------
    i : In(stream.Signature(StructLayout({"scale": unsigned(8),
                                           "codes": ArrayLayout(unsigned(width), block_size)})))
        One block per beat.
    o : Out(stream.Signature(StructLayout({"values": ArrayLayout(unsigned(32), lanes)})))
        FP32 bit patterns; beat ``b`` carries block elements ``b * lanes .. b * lanes + lanes-1``.
    """

    def __init__(self, fmt, block_size=32, lanes=None):
        self.fmt = check_mx_format(fmt)
        self.block_size = check_power_of_two("block_size", block_size, 2, 64)
        self.lanes = check_lanes(lanes, block_size)
        self.elem = self.fmt.element
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "scale": unsigned(8),
                "codes": data.ArrayLayout(unsigned(self.elem.width), self.block_size),
            }))),
            "o": Out(stream.Signature(data.StructLayout({
                "values": data.ArrayLayout(unsigned(32), self.lanes),
            }))),
        })

    @property
    def beats_per_block(self):
        return self.block_size // self.lanes

    @property
    def latency(self):
        return 2

    @property
    def throughput(self):
        return block_throughput("output", self.lanes, self.beats_per_block)

    def elaborate(self, platform):
        m = Module()
        n = self.beats_per_block
        width = self.elem.width
        group_bits = self.lanes * width

        blk_valid = Signal()
        # Data registers need no reset: they are only read behind their valid bit.
        blk_scale = Signal(8, reset_less=True)
        blk_codes = Signal(self.block_size * width, reset_less=True)  # current group lowest

        o_ready, o_load = pipeline_stage(m, valid=self.o.valid, valid_in=blk_valid,
                                         ready_out=self.o.ready, name="out")
        if n == 1:
            last = Const(1)
        else:
            count = Signal(range(n))
            last = count == n - 1
        blk_ready, blk_load = pipeline_stage(m, valid=blk_valid, valid_in=self.i.valid,
                                             ready_out=last & o_ready, name="blk")
        m.d.comb += self.i.ready.eq(blk_ready)

        with m.If(blk_load):
            m.d.sync += [
                blk_scale.eq(self.i.payload.scale),
                blk_codes.eq(self.i.payload.codes.as_value()),
            ]
            if n > 1:
                m.d.sync += count.eq(0)
        if n > 1:
            with m.Elif(blk_valid & o_ready & ~last):
                m.d.sync += [
                    blk_codes.eq(blk_codes >> group_bits),
                    count.eq(count + 1),
                ]

        values = []
        for j in range(self.lanes):
            decoder = m.submodules[f"element{j}"] = ElementDecoder(self.elem)
            m.d.comb += [
                decoder.code.eq(blk_codes[j * width:(j + 1) * width]),
                decoder.scale.eq(blk_scale),
            ]
            values.append(decoder.value)

        with m.If(o_load):
            m.d.sync += self.o.payload.values.eq(Cat(*values))
        return m
