"""Exact dot product of one pair of MX blocks: element products and an adder tree (MX_SPEC §6)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl.common import check_choice, is_int, is_power_of_two
from hdl.common.ecp5_carry import ADDERS, xor_add
from hdl.common.ecp5_mult import MULT_LATENCY, registered_multiply
from hdl.common.pipeline import delay
from hdl.formats import ElementFormat, ElementSet

__all__ = ["MULTIPLIERS", "BlockDotProduct", "block_sum_width", "element_magnitude_bits",
           "too_wide_for_dsp", "tree_levels"]

MULTIPLIERS = ("dsp", "lut", "ecp5-dsp", "ecp5-dsp-fp")
#: Largest element magnitude (bits) ``multipliers="ecp5-dsp-fp"`` puts into a MULT18X18D: an
#: unsigned magnitude as a positive 18-bit signed operand.
DSP_MAGNITUDE_BITS = 17


def element_magnitude_bits(elem):
    """Bits of the largest decodable magnitude in units of ``elem.min_subnormal`` (of an
    :class:`~hdl.formats.ElementSet`: in its common unit).

    Like ``elem.int_bits`` (MX_SPEC §6), except that INT8 counts the code 0x80 (-2.0, magnitude
    128), which every decoder accepts: it needs 8 bits, not 7.
    """
    if isinstance(elem, ElementSet):
        return max(element_magnitude_bits(f) + elem.offset(f) for f in elem.members)
    return elem.int_bits if elem.is_float else elem.width


def _is_int(elem):
    """A single integer element format (INT8), not a set."""
    return isinstance(elem, ElementFormat) and not elem.is_float


def _has_nan_codes(elem):
    """Some code of the format (of a member of the set) is NaN, or for E5M2 ±Inf."""
    members = elem.members if isinstance(elem, ElementSet) else (elem,)
    return any(f.nan_mantissas or f.has_inf for f in members)


def too_wide_for_dsp(**elems):
    """``[(name, bits)]`` of the named element formats whose magnitudes do not fit a
    ``multipliers="ecp5-dsp-fp"`` MULT18X18D operand (:data:`DSP_MAGNITUDE_BITS`): the one rule
    behind the constructor's error and the CLI's."""
    return [(name, element_magnitude_bits(elem)) for name, elem in elems.items()
            if element_magnitude_bits(elem) > DSP_MAGNITUDE_BITS]


#: Operands this wide (significand with its hidden bit, or INT8 magnitude), or with this many
#: exponent bits, get a decode register at 200 MHz.
DECODE_STAGE_SIG_BITS = 4
DECODE_STAGE_EXP_BITS = 5


def _significand_bits(elem):
    """Bits of the decoded significand (hidden bit included), or of an INT8 magnitude."""
    if isinstance(elem, ElementSet):
        return max(_significand_bits(f) for f in elem.members)
    return elem.mbits + 1 if elem.is_float else elem.width


def _exponent_bits(elem):
    """Exponent field bits (the widest member's, for a set)."""
    if isinstance(elem, ElementSet):
        return max(f.ebits for f in elem.members)
    return elem.ebits


#: Significand products with both operands at least this wide (narrower, wider) get a register
#: between the first level of their partial-product sum and the rest.
SPLIT_PRODUCT_BITS = (4, 4)

#: Alignment shifts spanning this many positions or more are split by a register.
SHIFT_STAGE_SPAN = 16
#: The fine part of a split alignment shift: ``shift % FINE_SHIFT_SPAN``.
FINE_SHIFT_SPAN = 8


def _max_shift(elem):
    """Largest left shift :func:`_decode` gives an element (``exp - 1`` at the top exponent; for
    a set, in its common unit)."""
    if isinstance(elem, ElementSet):
        return max(_max_shift(f) + elem.offset(f) for f in elem.members)
    return (1 << elem.ebits) - 2 if elem.is_float else 0


def _max_magnitude(elem):
    if isinstance(elem, ElementSet):
        return max(_max_magnitude(f) << elem.offset(f) for f in elem.members)
    return int(elem.max_value / elem.min_subnormal) if elem.is_float else 1 << (elem.width - 1)


def block_sum_width(a_elem, b_elem, block_size):
    """Two's complement width that holds any sum of ``block_size`` exact element products.

    Equals the MX_SPEC §6 table for every pair except INT8 x INT8, which needs one bit more
    (21 at block 32) because (-128) * (-128) * 32 = 2**19 exactly.
    """
    return (block_size * _max_magnitude(a_elem) * _max_magnitude(b_elem)).bit_length() + 1


def tree_levels(block_size):
    """Adder-tree levels of a block: one per halving, plus one for the last sign correction."""
    return block_size.bit_length()      # log2(block_size) + 1


def _decode(m, code, elem, name):
    """Element code -> (sign, integer significand, left shift, is_nan): |x| = sig << shift."""
    if not elem.is_float:
        sign = code[elem.width - 1]
        mag = Signal(elem.width, name=f"{name}_mag")
        m.d.comb += mag.eq(Mux(sign, -code.as_signed(), code))     # 0x80 -> 128
        return sign, mag, Const(0, 1), Const(0)
    sign = code[elem.width - 1]
    exp = code[elem.mbits:elem.mbits + elem.ebits]
    mant = code[:elem.mbits]
    top = exp == (1 << elem.ebits) - 1
    if elem.has_inf:                       # E5M2: Inf and NaN codes both poison the block
        nan = top
    elif elem.nan_mantissas:
        nan = top & Cat(mant == k for k in elem.nan_mantissas).any()
    else:
        nan = Const(0)
    sig = Cat(mant, exp != 0)
    shift = Mux(exp == 0, 0, (exp - 1)[:elem.ebits])
    return sign, sig, shift, nan


def _decode_selected(m, code, elem, sel, name):
    """:func:`_decode` of a code of an :class:`~hdl.formats.ElementSet` as its member ``sel``
    (the member's code in the slot's low bits), the shift in the set's common unit. An index past
    the members decodes as zero (the block is flagged NaN beside the lanes)."""
    sign = Signal(name=f"{name}_sign")
    sig = Signal(_significand_bits(elem), name=f"{name}_sig")
    shift = Signal(range(_max_shift(elem) + 1), name=f"{name}_shift")
    nan = Signal(name=f"{name}_nan")
    with m.Switch(sel):
        for k, f in enumerate(elem.members):
            f_sign, f_sig, f_shift, f_nan = _decode(m, code[:f.width], f, f"{name}_{f.name}")
            with m.Case(k):
                m.d.comb += [sign.eq(f_sign), sig.eq(f_sig),
                             shift.eq(f_shift + elem.offset(f)), nan.eq(f_nan)]
    return sign, sig, shift, nan


def _pairwise_sum(terms, levels=None):
    """``levels`` levels (all by default) of a balanced pairwise sum of ``terms``."""
    while len(terms) > 1 and levels != 0:
        terms = [x + y for x, y in zip(terms[0::2], terms[1::2])] + terms[len(terms) & ~1:]
        levels = None if levels is None else levels - 1
    return terms


def _add(a, b, cin=None):
    """``a + b (+ cin)`` of signed values, one bit wider than the wider (a 1-bit ``cin`` does not
    need a second bit: Yosys makes it the carry chain's input)."""
    if cin is None:
        return a + b
    return (a + b + cin)[:max(len(a), len(b)) + 1].as_signed()


def _xor_leaf(m, mag, neg, j):
    """Registered ``(mag ^ -neg)`` as a signed leaf one bit wider, and ``neg`` beside it: with the
    ``+neg`` that a tree adder adds as its carry-in, ``-mag`` when ``neg``."""
    leaf = Signal(signed(len(mag) + 1), name=f"prod{j}", reset_less=True)
    sign = Signal(name=f"neg{j}", reset_less=True)
    m.d.sync += [leaf.eq(Cat(mag, Const(0, 1)) ^ neg.replicate(len(mag) + 1)), sign.eq(neg)]
    return leaf, sign


def _partial_products(a, b):
    """Unsigned ``a * b`` as shifted partial products (their sum is the product), so synthesis
    maps it to LUTs (Yosys turns every ``$mul`` into DSP blocks on ECP5). A balanced sum of them
    is an 8 x 4 product two adders deep, not three in series."""
    if len(a) < len(b):
        a, b = b, a
    return [Mux(b[j], a, 0) << j for j in range(len(b))]


class BlockDotProduct(wiring.Component):
    """Exact sum of the ``block_size`` element products of an A block and a B block.

    Every product is exact (MX_SPEC §6); their sum is formed in a balanced adder tree of
    :func:`block_sum_width` bits, in units of ``a_lsb * b_lsb`` (the two elements' smallest
    subnormals, see ``sim.golden.elements.lsb_exponent``). FP x FP and INT8 x FP products are
    built from shift-and-add partial products (no DSP blocks); INT8 x INT8 uses a signed
    multiplier, which synthesis maps to one DSP multiplier per lane. Signs are applied by XOR, and
    the +1 that completes each negation enters an adder of the tree as its carry-in, which avoids
    a negator per lane.

    The datapath is free-running (no enable, no valid): the caller delays its sideband bits by
    :attr:`latency` cycles.

    Parameters
    ----------
    a_elem, b_elem : ElementFormat
        Element formats of the A and B blocks.
    block_size : int
        Elements per block (a power of two, 2..64).
    tree_stages : int
        Register stages inside the adder tree, ``0 .. tree_levels(block_size)``, spread evenly
        over its levels.
    product_stages : {1, 2}
        Registers in the element-product stage: 1 (after the products), or 2 (also between the
        significand product and the alignment shift, for 200 MHz). With 2, a pair with an
        operand of 4 or more significand bits in logic (E4M3, E2M3, or an INT8 magnitude: INT8
        x FP, and INT8 x INT8 with ``multipliers="lut"``) or of 5 exponent bits (E5M2) gets a
        third, after the decode; a pair whose alignment shift spans 16 positions or more (an
        E4M3 or E5M2 operand) gets one more, inside that shift; a significand product of 4 x 4
        bits or more (E4M3 or E2M3 x E4M3, E2M3 or INT8, INT8 x INT8 in logic) one more, after
        the first level of its partial-product sum. INT8 x INT8
        with ``multipliers="ecp5-dsp"`` has the DSP's input and output registers, and with 2 one
        more in the fabric right after the DSP. With ``multipliers="ecp5-dsp-fp"`` the other
        pairs have the DSP's 2, and with 2 one more for the decoded magnitudes and one after the
        DSP; with ``adders="generic"`` the register after the DSP holds the leaf XOR, at any
        count.
        :attr:`product_stages` holds the count in use.
    multipliers : {"dsp", "lut", "ecp5-dsp", "ecp5-dsp-fp"}
        How INT8 x INT8 products are built: ``"dsp"`` (a signed ``*``, one DSP multiplier per
        lane, mapped by synthesis for any device), ``"ecp5-dsp"`` (an ECP5 MULT18X18D per lane
        with its input and output registers in use, see :mod:`hdl.common.ecp5_mult`; ECP5
        only) or ``"lut"`` (shift-and-add in logic, like every other pair; for arrays with more
        lanes than the device has DSPs). Other pairs use logic, except with ``"ecp5-dsp-fp"``:
        INT8 x INT8 as with ``"ecp5-dsp"``, and every other pair as the product of the two
        element magnitudes (decoded in logic to integers in units of the smallest subnormal) in
        a MULT18X18D per lane, the signs applied in the adder tree; both elements' magnitudes
        must fit :data:`DSP_MAGNITUDE_BITS` bits (E3M2, E2M3, E2M1, INT8; not E4M3 or E5M2).
    adders : {"generic", "ecp5-ccu2c"}
        The first level of the adder tree. ``"generic"``: inferred adders, each product made
        signed by a LUT4 per bit (``magnitude ^ -neg``) in front of them. ``"ecp5-ccu2c"`` (ECP5
        only): ECP5 carry chains that apply both products' signs in their own LUT4s
        (:func:`hdl.common.ecp5_carry.xor_add`), so the product registers hold magnitudes. In
        both the ``+neg`` of every negative product enters a tree adder as its carry-in. No
        effect on INT8 x INT8 in DSP blocks (signed products).

    Members
    -------
    a_scale, b_scale : In(8)
        E8M0 scale codes.
    a_codes, b_codes : In(block_size * width)
        Element codes, element i at bits ``[w*i + w - 1 : w*i]``.
    sum : Out(signed(block_sum_width(...)))
        Exact sum of products, in units of ``a_lsb * b_lsb``.
    scale_sum : Out(9)
        ``a_scale + b_scale`` (codes; the block's weight is ``2**(scale_sum - 254)``).
    nan : Out(1)
        A scale is 0xFF, or an element is NaN (or, for E5M2, ±Inf).
    """

    def __init__(self, a_elem, b_elem, block_size, *, tree_stages, multipliers="dsp",
                 product_stages=1, adders="generic"):
        for name, elem in (("a_elem", a_elem), ("b_elem", b_elem)):
            if not isinstance(elem, (ElementFormat, ElementSet)):
                raise TypeError(f"{name} must be an ElementFormat or an ElementSet, not {elem!r}")
        if not (is_power_of_two(block_size) and 2 <= block_size <= 64):
            raise ValueError(f"block_size must be a power of two in 2..64, not {block_size!r}")
        levels = tree_levels(block_size)
        if not (is_int(tree_stages) and 0 <= tree_stages <= levels):
            raise ValueError(f"tree_stages must be an integer in 0..{levels} for block_size "
                             f"{block_size}, not {tree_stages!r}")
        if product_stages not in (1, 2):
            raise ValueError(f"product_stages must be 1 or 2, not {product_stages!r}")
        if multipliers not in MULTIPLIERS:
            raise ValueError(f"multipliers must be one of {', '.join(map(repr, MULTIPLIERS))}, "
                             f"not {multipliers!r}")
        self.multipliers = multipliers
        # The ECP5 DSP primitive with its registers (INT8 x INT8, and more with ecp5-dsp-fp).
        self.ecp5_dsp = multipliers in ("ecp5-dsp", "ecp5-dsp-fp")
        self.adders = check_choice("adders", adders, ADDERS)
        # INT8 x INT8 as one signed multiply per lane (DSP), not shift-and-add in logic.
        self.dsp_products = _is_int(a_elem) and _is_int(b_elem) and multipliers != "lut"
        # Any other pair with ecp5-dsp-fp: sign-magnitude products of decoded magnitudes.
        self.dsp_magnitudes = multipliers == "ecp5-dsp-fp" and not self.dsp_products
        if self.dsp_magnitudes and isinstance(a_elem, ElementSet):
            raise ValueError(f"multipliers='ecp5-dsp-fp' is not available with a format set "
                             f"({a_elem.name}): use multipliers='ecp5-dsp' or 'lut' (a set's "
                             f"products are built in logic)")
        if self.dsp_magnitudes:
            elems = {"a_elem": a_elem, "b_elem": b_elem}
            for name, bits in too_wide_for_dsp(**elems)[:1]:
                raise ValueError(
                    f"multipliers='ecp5-dsp-fp' needs element magnitudes of at most "
                    f"{DSP_MAGNITUDE_BITS} bits (a MULT18X18D operand); {name} {elems[name].name} "
                    f"has {bits}: use multipliers='ecp5-dsp' (its products in logic)")
        logic = not (self.dsp_products or self.dsp_magnitudes)
        # At 200 MHz the decoded operands get a register of their own when the decode and the
        # significand product do not fit one stage together: an INT8 operand decoded in logic
        # (|code| is a negation in series with the product), a 4-bit significand (E4M3, E2M3:
        # a 4 x 4 or wider product) or a 5-bit exponent (E5M2: its zero and NaN/Inf tests are
        # two LUT levels). The payload register feeding the decode is wide and placed far away,
        # so that hop is mostly routing (ECP5-85F, nextpnr router1: 6.7-8.0 ns from the payload
        # or decoded-operand register to the significand product). Only pairs of E3M2 and E2M1
        # decode and multiply in one stage. A format set's decode is a member select on top.
        self.decode_stage = (product_stages == 2 and logic
                             and any(_significand_bits(e) >= DECODE_STAGE_SIG_BITS
                                     or _exponent_bits(e) >= DECODE_STAGE_EXP_BITS
                                     or isinstance(e, ElementSet)
                                     for e in (a_elem, b_elem)))
        # ... and a register inside an alignment shift of 16 or more positions (an E4M3 or
        # E5M2 operand: up to 58 positions into a 64-bit product for E5M2 x E5M2), between the
        # fine (0..7) and the coarse (multiples of 8) part: 5-6 mux levels do not fit 5 ns.
        self.shift_stage = (product_stages == 2 and logic
                            and _max_shift(a_elem) + _max_shift(b_elem) >= SHIFT_STAGE_SPAN)
        # ... and a register after the first adder level of a significand product of 4 x 4 bits
        # or more (E4M3 / E2M3 x E4M3 / E2M3 / INT8, INT8 x INT8 in logic): its decoded-operand
        # register -> product path was 6.7-7.3 ns, the limit of those pairs (mostly routing: a
        # decoded significand bit fans out to every partial product).
        sig_bits = sorted(_significand_bits(e) for e in (a_elem, b_elem))
        self.split_product = (product_stages == 2 and logic
                              and all(w >= least for w, least in zip(sig_bits,
                                                                     SPLIT_PRODUCT_BITS)))
        # ... and with DSP magnitudes, a register after the magnitude decode (the payload
        # register and the DSP row are far apart).
        self.magnitude_stage = self.dsp_magnitudes and product_stages == 2
        # Sign-magnitude products summed pairwise on carry chains that apply the signs.
        self.xor_leaves = adders == "ecp5-ccu2c" and not self.dsp_products
        # ... and a fabric register right after an ECP5 DSP whose product goes straight into an
        # adder: the route out of the DSP row and the first tree adder were the critical path
        # of INT8 x INT8 on ecp5-dsp (5.0-5.9 ns). (With the leaf XOR, the leaf register is
        # that register.)
        self.dsp_output_stage = (product_stages == 2 and self.ecp5_dsp
                                 and (self.dsp_products or self.xor_leaves))
        if self.ecp5_dsp and self.dsp_products:
            self.product_stages = MULT_LATENCY + self.dsp_output_stage
        elif self.dsp_magnitudes:
            self.product_stages = (MULT_LATENCY + self.magnitude_stage + self.dsp_output_stage
                                   + (not self.xor_leaves))
        else:
            self.product_stages = (product_stages + self.decode_stage + self.shift_stage
                                   + self.split_product)
        self.a_elem, self.b_elem = a_elem, b_elem
        self.block_size = block_size
        self.tree_stages = tree_stages
        self.sum_width = block_sum_width(a_elem, b_elem, block_size)
        sels = {f"{side}_sel": In(elem.sel_bits) for side, elem in (("a", a_elem), ("b", b_elem))
                if isinstance(elem, ElementSet)}
        super().__init__({
            "a_scale": In(8),
            "b_scale": In(8),
            "a_codes": In(block_size * a_elem.width),
            "b_codes": In(block_size * b_elem.width),
            **sels,
            "sum": Out(signed(self.sum_width)),
            "scale_sum": Out(9),
            "nan": Out(1),
        })

    @property
    def latency(self):
        """Cycles from the inputs to ``sum`` / ``scale_sum`` / ``nan``."""
        return self.product_stages + self.tree_stages

    @property
    def product_width(self):
        """Unsigned width of one exact element product."""
        return (_max_magnitude(self.a_elem) * _max_magnitude(self.b_elem)).bit_length()

    def elaborate(self, platform):
        m = Module()
        a_elem, b_elem, n = self.a_elem, self.b_elem, self.block_size
        pw = self.product_width

        leaves, signs, nans = [], [], []        # nans: per-lane NaN flags (formats with NaN codes)
        for j in range(n):
            a_code = self.a_codes[j * a_elem.width:(j + 1) * a_elem.width]
            b_code = self.b_codes[j * b_elem.width:(j + 1) * b_elem.width]
            if self.dsp_products and self.ecp5_dsp:
                # The DSP's own registers hold the operands and the product.
                product = registered_multiply(m, a_code, b_code, f"mult{j}")[:pw + 1]
                leaves.append(delay(m, product, self.dsp_output_stage, f"prod{j}").as_signed())
                continue
            if self.dsp_products:
                # Signed 8 x 8 multiply (a DSP lane); 0x80 * 0x80 = +16384 needs 16 bits.
                if self.product_stages == 2:
                    # Operands registered next to the DSP block: the input payload register is
                    # wide and placed far away, and the multiplier itself takes ~4.5 ns.
                    a_code = delay(m, a_code, 1, f"a{j}_p")
                    b_code = delay(m, b_code, 1, f"b{j}_p")
                leaf = Signal(signed(pw + 1), name=f"prod{j}", reset_less=True)
                m.d.sync += leaf.eq(a_code.as_signed() * b_code.as_signed())
                leaves.append(leaf)
                continue
            a_sign, a_sig, a_shift, a_nan = self._decode(m, a_code, "a", j)
            b_sign, b_sig, b_shift, b_nan = self._decode(m, b_code, "b", j)
            if self.dsp_magnitudes:
                # Integer magnitudes (units of the smallest subnormal) into the DSP, zero-extended
                # to positive signed operands; the sign rides beside it to the tree.
                a_mag = (a_sig << a_shift)[:element_magnitude_bits(a_elem)]
                b_mag = (b_sig << b_shift)[:element_magnitude_bits(b_elem)]
                neg = a_sign ^ b_sign
                if self.magnitude_stage:
                    a_mag, b_mag, neg = (delay(m, v, 1, f"{name}{j}") for v, name in (
                        (a_mag, "a_mag"), (b_mag, "b_mag"), (neg, "neg_m")))
                product = registered_multiply(m, Cat(a_mag, Const(0, 1)),
                                              Cat(b_mag, Const(0, 1)), f"mult{j}")
                neg = delay(m, neg, MULT_LATENCY, f"neg_d{j}")
                if self.xor_leaves:
                    leaves.append(delay(m, product[:pw], self.dsp_output_stage, f"mag{j}"))
                    signs.append(delay(m, neg, self.dsp_output_stage, f"neg{j}"))
                else:
                    leaf, sign = _xor_leaf(m, product[:pw], neg, j)
                    leaves.append(leaf)
                    signs.append(sign)
                continue                # (no NaN codes in formats this narrow)
            if self.decode_stage:
                a_sign, a_sig, a_shift, a_nan, b_sign, b_sig, b_shift, b_nan = (
                    delay(m, v, 1, f"{name}{j}_dec") for v, name in (
                        (a_sign, "a_sign"), (a_sig, "a_sig"), (a_shift, "a_shift"),
                        (a_nan, "a_nan"), (b_sign, "b_sign"), (b_sig, "b_sig"),
                        (b_shift, "b_shift"), (b_nan, "b_nan")))
            terms = _partial_products(a_sig, b_sig)
            shift = a_shift + b_shift
            neg = a_sign ^ b_sign
            if self.split_product:
                terms = [delay(m, t, 1, f"pp{j}_{i}")
                         for i, t in enumerate(_pairwise_sum(terms, 1))]
                shift, neg = delay(m, shift, 1, f"shift_pp{j}"), delay(m, neg, 1, f"neg_pp{j}")
            sig = _pairwise_sum(terms)[0]
            if self.product_stages >= 2:
                # Significand product and shift amount registered before the alignment shifter
                # (for wide formats the decode, multiply and a 30-position shift do not fit 5 ns).
                sig, shift, neg = (delay(m, v, 1, f"{name}{j}")
                                   for v, name in ((sig, "sig"), (shift, "shift"), (neg, "neg_p")))
            if self.shift_stage:
                fine_bits = FINE_SHIFT_SPAN.bit_length() - 1
                fine = delay(m, sig << shift[:fine_bits], 1, f"fine{j}")
                coarse = delay(m, shift[fine_bits:], 1, f"coarse{j}")
                neg = delay(m, neg, 1, f"neg_f{j}")
                mag = (fine << Cat(Const(0, fine_bits), coarse))[:pw]
            else:
                mag = (sig << shift)[:pw]
            # (mag ^ -neg) + neg == (neg ? -mag : mag); the +neg enters a tree adder as its
            # carry-in. The XOR is a LUT4 per bit here, or part of the first tree level's carry
            # chains.
            if self.xor_leaves:
                leaf = Signal(pw, name=f"mag{j}", reset_less=True)
                sign = Signal(name=f"neg{j}", reset_less=True)
                m.d.sync += [leaf.eq(mag), sign.eq(neg)]
            else:
                leaf, sign = _xor_leaf(m, mag, neg, j)
            leaves.append(leaf)
            signs.append(sign)
            if _has_nan_codes(a_elem) or _has_nan_codes(b_elem):
                lane_nan = Signal(name=f"nan{j}", reset_less=True)
                m.d.sync += lane_nan.eq(delay(m, a_nan | b_nan,
                                              self.product_stages - 1 - self.decode_stage,
                                              f"nan{j}_p"))
                nans.append(lane_nan)

        # The scales' NaN and sum ride beside the trees; lane NaN flags are OR-reduced in a tree
        # of their own (a 64-input OR in one stage is a wide gather across the lanes).
        a_scale, b_scale = (delay(m, v, self.product_stages - 1, n) for v, n in
                            ((self.a_scale, "a_scale_p"), (self.b_scale, "b_scale_p")))
        # A format index past a set's members makes the block NaN, as a NaN scale does.
        block_nan = (a_scale == 0xFF) | (b_scale == 0xFF)
        for side, elem in (("a", a_elem), ("b", b_elem)):
            if isinstance(elem, ElementSet):
                sel = delay(m, getattr(self, f"{side}_sel"), self.product_stages - 1,
                            f"{side}_sel_p")
                block_nan = block_nan | (sel >= len(elem.members))
        scale_nan = Signal()
        scale_sum = Signal(9)
        m.d.sync += [
            scale_nan.eq(block_nan),
            scale_sum.eq(a_scale + b_scale),
        ]
        # Three trees in step: the products, the +1 corrections of the XOR trick still to add
        # (one per negative product) and the lane NaN flags. Same cuts for all. Each adder of
        # the product tree takes one correction as its carry-in (Yosys maps a 1-bit addend onto
        # the carry chain's input: no LUT4, no counting tree); the one left over is added at
        # the last level.
        levels = tree_levels(n)
        cut_after = {round(levels * (k + 1) / self.tree_stages) for k in range(self.tree_stages)} \
            if self.tree_stages else set()
        # With xor_leaves the first level adds (a ^ -na) + (b ^ -nb) + na: the odd lanes' +nb
        # are left.
        trees = [leaves, signs[1::2] if self.xor_leaves else signs, nans]
        side = [scale_nan, scale_sum]
        for level in range(1, levels + 1):
            values, pending = trees[0], trees[1]
            if len(values) > 1:
                if level == 1 and self.xor_leaves:
                    paired = [xor_add(m, a, na, b, nb, na, f"t1_xor{k}")
                              for k, (a, na, b, nb) in enumerate(zip(
                                  values[0::2], signs[0::2], values[1::2], signs[1::2]))]
                else:
                    paired = [_add(a, b, pending.pop() if pending else None)
                              for a, b in zip(values[0::2], values[1::2])]
                trees[0] = paired + values[len(values) & ~1:]
            if len(trees[2]) > 1:
                trees[2] = ([a | b for a, b in zip(trees[2][0::2], trees[2][1::2])]
                            + trees[2][len(trees[2]) & ~1:])
            if level == levels:
                assert len(trees[0]) == 1 and len(pending) <= 1
                if pending:
                    trees[0], trees[1] = [trees[0][0] + pending.pop()], []
            if level in cut_after:
                trees = [[self._register(m, v, f"t{level}_{t}_{k}") for k, v in enumerate(values)]
                         for t, values in enumerate(trees)]
                side = [self._register(m, v, f"t{level}_side{k}") for k, v in enumerate(side)]
        values = trees[0]
        assert len(values) == 1 and len(trees[2]) <= 1
        m.d.comb += [
            self.sum.eq(values[0]),
            self.nan.eq(side[0] | (trees[2][0] if trees[2] else 0)),
            self.scale_sum.eq(side[1]),
        ]
        return m

    def _decode(self, m, code, side, j):
        """Lane ``j``'s ``side`` code decoded (:func:`_decode`, or its member select for a
        set)."""
        elem = getattr(self, f"{side}_elem")
        if isinstance(elem, ElementSet):
            return _decode_selected(m, code, elem, getattr(self, f"{side}_sel"), f"{side}{j}")
        return _decode(m, code, elem, f"{side}{j}")

    def _register(self, m, value, name):
        """A tree register, no wider than the block sum needs."""
        width = min(len(value), self.sum_width)
        reg = Signal(signed(width) if value.shape().signed else width, name=name,
                     reset_less=True)
        m.d.sync += reg.eq(value)
        return reg

