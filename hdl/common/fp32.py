"""IEEE binary32 results: rounding an exact value to FP32, and FP32 addition."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .params import check_range
from .wire import wire

__all__ = ["ADD_CUTS", "FP32Add", "RoundToFP32"]

_INF = 0x7F800000
_QNAN = 0x7FC00000
_SIG_GUARD = 25     # 24 significand bits and the guard bit


def _leading_zeros(m, name, value):
    """Leading-zero count of ``value`` (``len(value)`` when zero) as a log-depth tree, driven
    onto a comb signal ``name`` of ``m``.

    Unlike :func:`~hdl.common.count_leading_zeros` (a priority chain) it stays shallow for wide
    inputs, in logic and in Amaranth's simulator, whose compiled code nests one level per Mux.
    ``value`` is padded below with ones up to a power of two, so the count never exceeds
    ``len(value)`` and needs no zero case.
    """
    width = len(value)
    levels = width.bit_length()                    # 2**levels > width
    padded = wire(m, f"{name}_in", Cat(Const(-1, (1 << levels) - width), value))

    def tree(v):                                   # -> (count of len(v).bit_length()-1 bits, any)
        if len(v) == 2:
            return ~v[1], v.any()
        half = len(v) // 2
        count_lo, _ = tree(v[:half])
        count_hi, any_hi = tree(v[half:])
        return Cat(Mux(any_hi, count_hi, count_lo), ~any_hi), v.any()

    return wire(m, name, tree(padded)[0])


#: FP32Add stages -> its register cuts: 0 after the operand order (magnitude compare, swap,
#: exponent difference), 1 after the alignment shift and the add, 2 after the leading-zero count.
#: (With the alignment shift before cut 0, the first of three stages was 16 logic levels, the
#: critical path of a 4x4 mx-array at lanes=8: 55.6 MHz.)
ADD_CUTS = {0: (), 1: (1,), 2: (0, 2), 3: (0, 1, 2)}

_CHUNK = 8          # RoundToFP32: leading-zero counts per 8-bit chunk, window = 4 chunks
_TOP_PAD = 25       # at least this many zeros above mag: a subnormal window may reach above it
_MAX_STAGES = 6
# stages -> register cuts used, of the cut points c0..c4 in pipeline order (see RoundToFP32).
# Chosen by ECP5 Fmax at mag_width 65 and 21; c1 always goes with c2 or c3 apart from the
# one-stage case, since without it synthesis merges the first-chunk select into the slab mux.
_CUTS = {0: (), 1: (2,), 2: (1, 3), 3: (1, 2, 3), 4: (0, 1, 2, 3), 5: (0, 1, 2, 3, 4),
         6: (0, 1, 2, 3, 5, 4)}


class RoundToFP32(wiring.Component):
    """Round an exact signed value to IEEE binary32, ties to even (RNE).

    The value is ``(-1)**sign * (mag + f) * 2**exp`` with ``f == 0`` when ``sticky`` is low and
    ``f`` a nonzero fraction below ``mag``'s LSB when it is high. ``sticky`` acts as an
    infinitesimal: the result is RNE of ``(mag + eps) * 2**exp``, which is RNE of every
    ``0 < f < 1`` whenever the FP32 LSB lies above ``2**exp`` (``mag`` holds at least 25
    significant bits, or the result is subnormal with ``exp < -149``); in particular a tie plus
    ``sticky`` rounds up. ``mag == 0`` with ``sticky`` gives a signed zero.

    Results: gradual underflow onto the ``2**-149`` grid; a magnitude of ``2**128 - 2**103`` or
    more gives +-Inf; a nonzero value that rounds to zero keeps its sign; an exact zero
    (``mag == 0`` and ``sticky == 0``) gives +0.0 whatever ``sign`` is. Never produces NaN.

    Internally ``mag`` sits below 25 to 32 zero bits (``D``), cut into 8-bit chunks counted
    from the top. The left shift ``L`` that brings the leading one to the top of the 25-bit
    window (24 significand bits over the guard bit) is capped for subnormals at
    ``cp = exp + 8*a`` (``8*a = mag_width + 125 + top padding``): a *sentinel* one at distance
    ``cp`` from the top of ``D`` joins the leading-zero count, but not the data, so one count
    ``L = min(lz, cp)`` serves normals and subnormals. The exponent field is then
    ``cp - L`` plus the window's top (hidden) bit, without a compare between the two cases, and
    ``cp < 0`` (everything below the guard bit) gives a signed zero. Since ``8*a`` is a
    multiple of 8, the sentinel's chunk and place in it come from ``exp``'s bits without an
    adder. ``L = 8*j + r`` is applied in two steps: the first nonzero chunk ``j`` (one-hot)
    picks a 32-bit slab of 4 chunks, then ``r`` picks the window inside the slab. The sticky
    bit below the window is "any ``mag`` chunk 4 or more below ``j``" or "any slab bit below the
    window"; no trailing-zero count, no full-width shifter.

    Segments, and the register cut point after each:

    1. From the inputs: per chunk of ``mag`` the any-bit flag and the leading-zero count; the
       sentinel's chunk (``exp // 8 == k - a``); ``exp - 253`` (a carry chain). -- cut c0
    2. The one-hot first nonzero chunk, sentinel included; in the sentinel's chunk the count
       becomes ``exp % 8`` if that comes first; "any ``mag`` bit 4 or more chunks below chunk
       k"; ``mag != 0``. -- cut c1
    3. One-hot AND-OR selects of the slab, ``r``, ``a - 1 - j`` and the whole-chunk sticky;
       sign and zero flags. -- cut c2
    4. The window (8:1 muxes by ``r``) and, from prefix ORs of the slab's low bits, whether
       any bit below its guard bit is set;
       ``cp - L - 1`` (8 bits, a carry chain) and, in a parallel chain, overflow
       ``cp - L - 1 >= 253``. -- cut c3
    5. The RNE round-up bit, and the increment: one carry chain over fraction and exponent
       field, which adds the hidden bit and one to the exponent field, and into which a carry
       out of the fraction bumps the exponent (254 -> 255 is Inf) -- cut c5 -- then the zero /
       Inf select. -- cut c4, a register on ``o``.

    ``stages`` picks the cuts: 0: none; 1: c2; 2: c1, c3; 3: c1, c2, c3; 4: c0..c3; 5: c0..c4;
    6: c0..c5.
    Each segment of the fully cut pipeline is about 5 ns on ECP5 (a carry chain plus a LUT, or
    3-4 LUT levels); use 5 when ``o`` feeds logic rather than a register.

    Parameters
    ----------
    mag_width : int
        Width of ``mag``, 1..256.
    exp_width : int
        Width of the signed ``exp``, 2..32.
    stages : int
        Register stages inside, 0..6. Free-running ``sync`` registers without enable or reset:
        the caller delays its valid bit by :attr:`latency` alongside.

    Members
    -------
    sign : In(1)
        Sign of the value (1: negative).
    mag : In(mag_width)
        Magnitude, an unsigned integer.
    exp : In(signed(exp_width))
        Power of two that ``mag`` is scaled by.
    sticky : In(1)
        Nonzero bits below ``mag``'s LSB.
    o : Out(32)
        FP32 bit pattern of the rounded value, :attr:`latency` cycles after the inputs.
    """

    def __init__(self, mag_width, exp_width, *, stages=0):
        self.mag_width = check_range("mag_width", mag_width, 1, 256)
        self.exp_width = check_range("exp_width", exp_width, 2, 32)
        self.stages = check_range("stages", stages, 0, _MAX_STAGES)
        super().__init__({
            "sign": In(1),
            "mag": In(mag_width),
            "exp": In(signed(exp_width)),
            "sticky": In(1),
            "o": Out(32),
        })

    @property
    def latency(self):
        """Cycles from the inputs to ``o`` (``stages``)."""
        return self.stages

    def elaborate(self, platform):
        m = Module()
        width, C = self.mag_width, _CHUNK
        # D, LSB first: zeros, mag, then >= 25 zeros on top so that a subnormal window may
        # reach above mag; the top padding makes cp = exp + 8*a below a multiple of 8.
        top_pad = _TOP_PAD + (-(width + 125 + _TOP_PAD)) % C
        a = (width + 125 + top_pad) // C
        n = -(-(width + top_pad) // C)                  # chunks, counted from the top
        total = n * C
        cuts = _CUTS[self.stages]

        def stage(cut, **values):
            """``values`` registered at cut point ``cut`` if it is used, else wired through."""
            out = {}
            for name, value in values.items():
                sig = Signal(Value.cast(value).shape(), name=f"c{cut}_{name}", reset_less=True)
                domain = m.d.sync if cut in cuts else m.d.comb
                domain += sig.eq(value)
                out[name] = sig
            return out

        def chunk(data, k):                             # chunk k, LSB first
            lo = total - C * (k + 1)
            return data[lo:lo + C]

        # --- 1: the sentinel's place cp = exp + 8*a: chunk exp//8 + a, distance exp%8 in it.
        # cp < 0 (all of mag below the guard bit) gives a signed zero.
        exp = Signal(signed(max(self.exp_width, 9)), name="exp_x")
        m.d.comb += exp.eq(self.exp)
        hi = exp[3:].as_signed()
        sent_chunk = Cat(hi == k - a for k in range(n))
        tiny = hi < -a
        data = Cat(Const(0, total - width - top_pad), self.mag, Const(0, top_pad))
        # Per chunk: any bit, and the leading-zero count (3 bits, used only when nonzero).
        any_m, lz_m = [], []
        for k in range(n):
            bits = chunk(data, k)
            any_m.append(bits.any())
            prefix = wire(m, f"pre{k}", Cat(bits[C - 1 - t:].any() for t in range(C)))
            lead = wire(m, f"lead{k}", Cat(bits[C - 1 - t] & ~prefix[t - 1] if t else bits[C - 1]
                                             for t in range(C)))    # one-hot first one
            lz_m.append(Cat((lead & Cat((t >> i) & 1 for t in range(C))).any()
                            for i in range(3)))
        any_m = Cat(any_m)
        s1 = stage(0, data=data, exp=exp[:8], exp_h=exp - 253, sc=sent_chunk, any=any_m,
                   any_d=any_m | sent_chunk, lz=Cat(lz_m), tiny=tiny,
                   sign=self.sign, sticky=self.sticky)

        # --- 2: the one-hot first nonzero chunk (sentinel included), its leading-zero count
        # (the sentinel's distance if it comes first in the chunk), and "any mag bit in chunks
        # k+4 and below" for the sticky below a slab.
        any_d = s1["any_d"]
        first = Cat(any_d[k] & ~any_d[:k].any() for k in range(n))
        below = Cat(s1["any"][k + 4:].any() for k in range(n))
        nonzero = s1["any"].any()
        so, lz = s1["exp"][:3], []
        for k in range(n):
            lz_k = s1["lz"][3 * k:3 * k + 3]
            ahead = ~s1["any"][k] | (so < lz_k)     # the sentinel precedes the chunk's first one
            lz.append(Mux(s1["sc"][k] & ahead, so, lz_k))
        lz = Cat(lz)
        s2 = stage(1, data=s1["data"], exp=s1["exp"], exp_h=s1["exp_h"], lz=lz, first=first,
                   below=below, nonzero=nonzero, tiny=s1["tiny"], sign=s1["sign"],
                   sticky=s1["sticky"])

        # --- 3: the slab of the first nonzero chunk, its in-chunk count r, and a - 1 - j.
        ext = Cat(Const(0, 3 * C), s2["data"])
        first = s2["first"]
        slab = r = v = 0
        for k in range(n):
            lo = total - C * (k + 1)                    # chunk k's LSB in data = in ext - 3C
            slab = slab | Mux(first[k], ext[lo:lo + 4 * C], 0)
            r = r | Mux(first[k], s2["lz"][3 * k:3 * k + 3], 0)
            v = v | Mux(first[k], a - 1 - k, 0)
        s3 = stage(2, slab=slab, r=r, lm=Cat(~r, v),      # lm = 8*(a-1-j) + 7-r = 8*a-1 - L
                   rest=(first & s2["below"]).any() | s2["sticky"], exp=s2["exp"],
                   exp_h=s2["exp_h"], zero=~s2["nonzero"] | s2["tiny"],
                   sign=s2["sign"] & (s2["nonzero"] | s2["sticky"]))

        # --- 4: the window, its guard and whether any bit below the guard is set; dm = cp - L
        # - 1 = exp + lm is the exponent field less the hidden bit, minus one (>= -1: the
        # sentinel caps L at cp).
        window = wire(m, "window", (s3["slab"] << s3["r"])[C - 1:4 * C])  # guard at bit 0
        sig = window[1:]
        # Any slab bit below the window: the 7 - r lowest, from prefix ORs of the slab's low
        # bits picked by r, in parallel with the window's muxes.
        low = wire(m, "low", Cat(Const(0, 1), *(s3["slab"][:t + 1].any() for t in range(C - 1))))
        s4 = stage(3, sig=sig, guard=window[0], below=s3["rest"] | low.bit_select(~s3["r"], 1),
                   dm=(s3["exp"] + s3["lm"])[:8],
                   huge=~(s3["exp_h"] + s3["lm"])[-1],  # dm >= 253, a parallel carry chain
                   zero=s3["zero"], sign=s3["sign"])

        # --- 5: RNE increment. The round-up bit is one LUT4 into the carry chain's LSB (ahead
        # of cut c3 it was a LUT level behind the window's 8:1 muxes and the low bits' prefix
        # ORs: the critical path of 14 of the 36 mx-dot pairs at 200 MHz on the ECP5-85F).
        # Adding hidden + 1 at the exponent LSB completes the exponent field in the same carry
        # chain, and a carry out of the fraction bumps the exponent (254 -> 255 is Inf).
        round_up = s4["guard"] & (s4["below"] | s4["sig"][0])
        rounded = (Cat(s4["sig"][:23], s4["dm"])
                   + Cat(round_up, Const(0, 22), ~s4["sig"][23], s4["sig"][23]))[:31]
        s5 = stage(5, rounded=rounded, zero=s4["zero"], huge=s4["huge"], sign=s4["sign"])
        mag_o = Mux(s5["zero"], 0, Mux(s5["huge"], _INF, s5["rounded"]))
        m.d.comb += self.o.eq(stage(4, o=Cat(mag_o, s5["sign"]))["o"])
        return m


class FP32Add(wiring.Component):
    """Combinational IEEE binary32 addition, round to nearest even.

    Bit-exact with numpy ``float32`` addition: subnormal inputs and results exact (no flush to
    zero), overflow to +-Inf, ``Inf + -Inf`` is NaN, ``x + -x`` is +0.0, ``-0 + -0`` is -0.0.
    Every NaN result is the canonical quiet NaN ``0x7FC00000``.

    Single path: order the operands so ``|x| >= |y|``, align ``y`` right with the shifted-out
    bits jammed into a sticky LSB (three bits below the significand keep RNE exact), add or
    subtract, normalise left by the leading-zero count (capped by a sentinel bit so a small
    exponent gives a subnormal), round. Exponent and significand are rounded by one 32-bit add.

    ``stages`` puts free-running registers between those steps (no enable): after the operand
    order, after the add, after the leading-zero count (:data:`ADD_CUTS`), so ``o`` is ``a + b``
    of ``stages`` cycles before. For a loop (an accumulator) that only adds every ``stages + 1``
    cycles or less often.

    Parameters
    ----------
    stages : int
        Register stages, 0 (combinational, the default) to 3.

    Members
    -------
    a : In(32)
        FP32 bit pattern of one addend.
    b : In(32)
        FP32 bit pattern of the other addend.
    o : Out(32)
        FP32 bit pattern of ``a + b``.
    """

    def __init__(self, *, stages=0):
        self.stages = check_range("stages", stages, 0, len(ADD_CUTS) - 1)
        super().__init__({"a": In(32), "b": In(32), "o": Out(32)})

    @property
    def latency(self):
        """Cycles from ``a``, ``b`` to their sum on ``o``."""
        return self.stages

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        cuts = ADD_CUTS[self.stages]

        def cut(k, **values):
            """``values`` registered at cut point ``k`` when it is used, else as they are."""
            if k not in cuts:
                return tuple(values.values())
            regs = []
            for name, v in values.items():
                reg = Signal(len(v), name=f"c{k}_{name}")
                m.d.sync += reg.eq(v)
                regs.append(reg)
            return tuple(regs)

        ea, eb = a[23:31], b[23:31]
        a_max, b_max = ea.all(), eb.all()
        a_frac, b_frac = a[:23].any(), b[:23].any()
        nan = (a_max & a_frac) | (b_max & b_frac) | (a_max & b_max & (a[31] ^ b[31]))
        inf_in = a_max | b_max                          # (when not NaN)

        # Operand order by magnitude: for IEEE patterns the 31-bit integers order like the values.
        swap = wire(m, "swap", a[:31] < b[:31])
        # Significands with the hidden bit; subnormals use exponent 1. Exponent differences are
        # formed for both orders, in parallel with the compare, and saturated to 31 (which
        # shifts all 27 bits out) from their high bits rather than by a comparator.
        sig_a, sig_b = Cat(a[:23], ea.any()), Cat(b[:23], eb.any())
        ex_a, ex_b = Mux(ea.any(), ea, 1), Mux(eb.any(), eb, 1)
        d_ab, d_ba = wire(m, "d_ab", ex_a - ex_b), wire(m, "d_ba", ex_b - ex_a)
        diff = wire(m, "diff", Mux(swap, Mux(d_ba[5:].any(), 31, d_ba[:5]),
                                          Mux(d_ab[5:].any(), 31, d_ab[:5])))
        sig_x = wire(m, "sig_x", Mux(swap, sig_b, sig_a))
        sig_y = wire(m, "sig_y", Mux(swap, sig_a, sig_b))
        ex_x = wire(m, "ex_x", Mux(swap, ex_b, ex_a))
        sign_x = Mux(swap, b[31], a[31])
        sub, both_neg = a[31] ^ b[31], a[31] & b[31]
        sig_x, sig_y, diff, ex_x, sign_x, sub, nan, inf_in, both_neg = cut(
            0, sig_x=sig_x, sig_y=sig_y, diff=diff, ex_x=ex_x, sign_x=sign_x, sub=sub, nan=nan,
            inf_in=inf_in, both_neg=both_neg)

        # Three bits below the significand; y's bits shifted past the bottom are ORed into its
        # LSB. A mask from diff finds them without a second shifter.
        x_ext = Cat(Const(0, 3), sig_x)
        y_ext = Cat(Const(0, 3), sig_y)
        y_shifted = y_ext >> diff
        y_sticky = (y_ext & ~(Const(-1, 27) << diff)[:27]).any()
        y_jam = Cat(y_shifted[0] | y_sticky, y_shifted[1:27])
        total = wire(m, "total", Mux(sub, x_ext - y_jam, x_ext + y_jam)[:28])
        total, ex_x, sign_x, nan, inf_in, both_neg = cut(
            1, total=total, ex_x=ex_x, sign_x=sign_x, nan=nan, inf_in=inf_in, both_neg=both_neg)

        # total * 2**(ex_x - 153) is the sum (the jammed LSB rounds the same as the exact y).
        # Normalise so the leading one reaches bit 27, but by at most ex_x places (subnormal):
        # a sentinel one at bit 27 - ex_x caps the count without a comparator.
        sentinel = (Const(1 << 27, 28) >> ex_x)[:28]
        shift = _leading_zeros(m, "shift", total | sentinel)
        total, shift, ex_n, nonzero, sign_x, nan, inf_in, both_neg = cut(
            2, total=total, shift=shift, ex_n=(ex_x - shift)[:8], nonzero=total.any(),
            sign_x=sign_x, nan=nan, inf_in=inf_in, both_neg=both_neg)
        norm = wire(m, "norm", (total << shift)[:28])
        sig, guard, sticky = norm[4:], norm[3], norm[:3].any()
        # Fields concatenate: a normal result's hidden bit adds one to ex_x - shift, the RNE
        # increment may carry into the exponent and on into Inf.
        rounded = wire(m, "rounded", Cat(sig[:23], ex_n, Const(0, 1))
                        + Cat(guard & (sticky | sig[0]), Const(0, 22), sig[23]))
        overflow = rounded[31] | rounded[23:31].all()

        with m.If(nan):
            m.d.comb += self.o.eq(_QNAN)
        with m.Elif(inf_in | overflow):                 # an Inf operand is never rounded
            m.d.comb += self.o.eq(Cat(Const(_INF, 31), sign_x))
        with m.Elif(~nonzero):                          # exact zero: -0 only for -0 + -0
            m.d.comb += self.o.eq(Cat(Const(0, 31), both_neg))
        with m.Else():
            m.d.comb += self.o.eq(Cat(rounded[:31], sign_x))
        return m
