"""Exact (Kulisch) accumulation of MX block sums across a group, one RNE rounding to FP32 at the end
(MX_SPEC §11, dot across blocks, mode ``exact``)."""

from amaranth.hdl import Cat, Const, Module, Mux, ResetSignal, Signal, Value, signed

from hdl.common import check_choice, is_int, is_power_of_two
from hdl.common.ecp5_carry import ADDERS, clearable_add
from hdl.common.ecp5_mux import MUXES, mux4
from hdl.common.fp32 import RoundToFP32
from hdl.common.pipeline import delay

from .block_accumulator import BlockAccumulator
from .dequantize import QNAN as FP32_QNAN

__all__ = ["ExactAccumulator"]

#: Span of ``s_a + s_b`` in scale codes: 0 .. 254 + 254.
SCALE_SUM_MAX = 508
#: Guard bits at least reserved above the largest block term for the group-length capacity.
MIN_GUARD = 16
#: log2 of the largest group length counted: the piece padding would allow up to 2**47 blocks
#: (MXINT8), but a 48-bit block counter's carry chain into the NaN flag was MXINT8's critical
#: path, and 2**24 blocks (2**29 elements at block 32, 84 ms at 200 MHz) is plenty for one dot.
MAX_GROUP_BLOCKS_LOG2 = 24
#: The entry shift's fine step (the coarse step shifts by multiples of it).
FINE_SHIFT = 8
#: Copies of each piece's "mixed" flag in the candidate chain: each drives a part of the mux.
#: Note: Yosys merges flip-flops with the same inputs and init value whatever their keep
#: attribute, so in the netlist these copies (and SELECT_COPIES) are one register. Copies kept
#: apart by different init values were measured at 9c6050f (2 flag and 2 select copies): MXFP4
#: 189.2 MHz median and 38 LUT4 more, MXINT8 185.1, against 198.4 and 182.7 merged; not adopted.
FLAG_COPIES = 4
#: Bits per group of a piece's zero / all-ones test registered straight from the adder (one LUT4
#: each), so the 32-bit test is one LUT level before the piece register and two after it.
FLAG_GROUP = 4
#: Copies of each piece's share-select register: each steers a part of the share bits.
SELECT_COPIES = 2
#: Bits of the piece under the leading one kept as data: with the leading one at the bottom of
#: its piece, FP32's other 23 significand bits and the guard bit. The bits under them only feed
#: the sticky bit (a flag per piece), so they are neither carried nor multiplexed.
LOW_BITS = 24
#: Pieces per candidate-chain stage with ``muxes="ecp5-pfumx"``: the stage picks the new mixed
#: piece among the old one and these with one 4:1 mux per bit (two LUT4s and a PFUMX) where one
#: piece per stage takes a 2:1 mux (one LUT4) per bit, so 3 pieces cost 2 LUT4s instead of 3.
GROUP_PIECES = 3
#: Candidate-chain references to a window piece (see ``ExactAccumulator._chain_stage``).
ZERO, ONES, MIXED_HI, MIXED_LO = range(4)


def _lookup(index, values):
    """``values[index]`` for a small constant table, as logic (one OR of index compares per
    output bit, which synthesis reduces to a function of ``index``'s bits; no ROM, no
    multiplier)."""
    width = max(max(values).bit_length(), 1)
    return Cat(Cat(index == i for i, v in enumerate(values) if v >> b & 1).any()
               for b in range(width))


def _each_field(state, fn):
    """``state`` (a candidate-chain state: fields, and per sign a dict of fields) with
    ``fn(name, value)`` applied to every field, ``name`` joined with ``_`` for a sign's."""
    return {key: ({sub: fn(f"{key}_{sub}", v) for sub, v in value.items()}
                  if isinstance(value, dict) else fn(key, value))
            for key, value in state.items()}


def _copy_slices(width, copies):
    """``(lo, hi)`` bit ranges of ``width`` bits, one per register copy of a select that steers
    them (the last copy takes the remainder)."""
    part = width // copies
    return [(c * part, width if c == copies - 1 else (c + 1) * part) for c in range(copies)]


class ExactAccumulator(BlockAccumulator):
    """Fixed-point accumulator wide enough for every block sum at every scale, rounded once.

    A block contributes ``sum * 2**(scale_sum - 254)`` (units ``a_lsb * b_lsb``). The accumulator
    is a two's complement integer of ``chunks * chunk`` bits whose bit 0 weighs
    ``2**(lsb_exp - 254)``, so every block term lands on it exactly: ``sum`` shifted left by
    ``scale_sum`` bits, sign-extended to the top.

    Why chunks: a 540-bit carry chain per cycle would cap the clock near 30 MHz. The accumulator is
    cut into ``chunk``-bit pieces; piece ``k`` adds its share of a block term ``k`` cycles after
    piece 0 did (the term travels up a delay line) together with the carry piece ``k - 1`` produced
    for the same term one cycle earlier. So the loop in every piece is one ``chunk``-bit adder,
    the pieces of a group's sum are final one after another. A chain beside the pieces keeps the
    leading piece found so far, the top :data:`LOW_BITS` bits of the piece under it and a sticky
    bit (one candidate per sign, since the sign comes with the top piece), so the rounding stage
    only picks a candidate, negates a negative window and rounds it with :class:`RoundToFP32`.
    Any number of groups are in flight; one block per cycle.

    Capacity: a group of up to :attr:`max_blocks` blocks is exact (what the width allows, at
    most ``2**MAX_GROUP_BLOCKS_LOG2``). A longer group, or a group with a NaN block, gives the
    canonical NaN ``0x7FC00000`` (never a wrapped sum).

    The datapath is free-running: ``valid`` travels with each block; ``o_valid`` pulses with a
    group's result :attr:`latency` cycles after its last block.

    Parameters
    ----------
    sum_width : int
        Width of the signed block sums.
    lsb_exp : int
        ``log2(a_lsb * b_lsb)``, the weight of one unit of ``sum``.
    chunk : int
        Bits per accumulator piece, a multiple of 8 in 32..64 (the piece under the leading one
        must supply the 24 bits under a leading one at the bottom of its piece).
    round_stages : int
        Register stages inside :class:`RoundToFP32`.
    adders : {"generic", "ecp5-ccu2c"}
        The pieces' adders. ``"generic"``: inferred, any device; a piece register clears by its
        synchronous reset after a group's last block and a second register copies the adder
        output for the candidate chain. ``"ecp5-ccu2c"`` (ECP5 only): ECP5 carry chains that
        clear the piece operand in their own LUT4s (:func:`hdl.common.ecp5_carry.clearable_add`),
        so the piece register is the adder's only load, packed beside its chain, and the
        candidate chain reads it directly; its zero / all-ones flags are taken from that register,
        not the adder (one cycle more latency, and a delay register where the copy was). The
        carry out is the sum of one more chain cell (two zero operand bits on top), and the
        carry registers have no reset (the pieces stay cleared one cycle longer after a reset
        instead), so nextpnr packs the top bits' piece registers and the carry register beside
        the chain.
    muxes : {"generic", "ecp5-pfumx"}
        The candidate chain. ``"generic"``: one piece per stage, its data fields through
        inferred 2:1 muxes (one LUT4 per bit). ``"ecp5-pfumx"`` (ECP5 only):
        :data:`GROUP_PIECES` pieces per stage (:meth:`_grouped_chain`), the data fields through
        4:1 muxes of two LUT4s and the slice's PFUMX (:func:`hdl.common.ecp5_mux.mux4`): two
        LUT4s per bit for three pieces (MXFP4 x MXFP4: -160 LUT4), one cycle more latency, and
        flip-flops where the pieces and the stage before wait for a group's last piece.

    Members
    -------
    As for :class:`BlockAccumulator`.
    """

    def __init__(self, sum_width, lsb_exp, *, chunk=32, round_stages=2, adders="generic",
                 muxes="generic", contexts=1):
        if not (is_int(chunk) and 32 <= chunk <= 64 and chunk % 8 == 0):
            raise ValueError(f"chunk must be a multiple of 8 in 32..64, not {chunk!r}")
        if not (is_int(contexts) and 1 <= contexts <= 16):
            raise ValueError(f"contexts must be an integer in 1..16, not {contexts!r}")
        super().__init__(sum_width, lsb_exp)
        self.chunk = chunk
        self.contexts = contexts
        self.adders = check_choice("adders", adders, ADDERS)
        # Cycles from a piece's adder to its zero / all-ones flags' first level.
        self._flag_delay = 0 if self.adders == "generic" else 1
        self.muxes = check_choice("muxes", muxes, MUXES)
        # Pieces per candidate-chain stage, and the chain's registers behind the top piece's
        # adder: the flags (three, four with ecp5-ccu2c), with ecp5-pfumx the group's summary,
        # and the stage.
        self._group = GROUP_PIECES if self.muxes == "ecp5-pfumx" else 1
        self._chain_delay = 4 + self._flag_delay + (self._group > 1)
        self.chunks = -(-(sum_width + SCALE_SUM_MAX + MIN_GUARD) // chunk)
        self.width = self.chunks * chunk
        # |partial sum| <= n * 2**(sum_width - 1) * 2**508 must stay below 2**(width - 1).
        self.max_blocks = 1 << min(self.width - sum_width - SCALE_SUM_MAX, MAX_GROUP_BLOCKS_LOG2)
        # A block term spans this many pieces once shifted by scale_sum % chunk.
        self.window_chunks = -(-(sum_width + chunk - 1) // chunk)
        # The rounder's input: the leading piece with its negation carry, over LOW_BITS of the
        # piece under it.
        self.rounder = RoundToFP32(chunk + 1 + LOW_BITS, 11, stages=round_stages)

    @property
    def latency(self):
        """Cycles from a group's last block at the inputs to ``o_valid``."""
        # two entry registers (coarse, fine shift), one stage per piece, the candidate chain's
        # four registers behind the top piece's adder (one more each with ecp5-ccu2c and
        # ecp5-pfumx), the candidate pick, the negation (two registered halves), the rounder
        # and the output register.
        return 2 + self.chunks + self._chain_delay + 1 + 2 + self.rounder.latency + 1

    def _piece_flags(self, m, k, total, piece):
        """Piece ``k``'s data and flags for the candidate chain, three cycles behind its adder
        (four with the ``ecp5-ccu2c`` adders, whose flags start from ``piece``: the adder output
        has no load but the piece register there): a dict of ``data``, ``nz``, ``noa``, ``tail``,
        ``mixed`` (a list of :data:`FLAG_COPIES` copies, one for the grouped chain) and, for
        the grouped chain, ``ref`` (the piece as the piece under a leading one). ``total`` is
        this cycle's adder output, ``piece`` the register holding it next cycle."""
        C = self.chunk
        # The zero / all-ones tests of the piece in three steps: per FLAG_GROUP bits, across
        # the groups, then the mixed flag from those two. As one 32-bit test after the piece
        # register it was the critical path of most pairs (6.1-6.7 ns, three LUT levels and
        # their routing), and with the mixed flag in the second step (16 inputs, three LUT
        # levels) it was MXFP4's once the carry registers were packed.
        if self._flag_delay:
            source = piece
            piece = Signal(C, name=f"piece{k}_d1", reset_less=True)
            m.d.sync += piece.eq(source)
        else:
            source = total
        groups = [source[i:i + FLAG_GROUP] for i in range(0, C, FLAG_GROUP)]
        any_g = Signal(len(groups), name=f"piece{k}_any", reset_less=True)
        all_g = Signal(len(groups), name=f"piece{k}_all", reset_less=True)
        m.d.sync += [any_g.eq(Cat(g.any() for g in groups)),
                     all_g.eq(Cat(g.all() for g in groups))]
        nz_e, noa_e = (Signal(name=f"piece{k}_nz_e", reset_less=True),
                       Signal(name=f"piece{k}_noa_e", reset_less=True))
        tail_e = Signal(name=f"piece{k}_tail_e", reset_less=True)
        data_e = Signal(C, name=f"piece{k}_de", reset_less=True)
        m.d.sync += [nz_e.eq(any_g.any()), noa_e.eq(~all_g.all()),
                     # Any bit set under the piece's top LOW_BITS (only the sticky needs it).
                     tail_e.eq(any_g[:(C - LOW_BITS) // FLAG_GROUP].any()),
                     data_e.eq(piece)]
        # The flags, with the piece delayed beside them: the compares would otherwise sit in
        # series with the mux they steer.
        flags = {"data": Signal(C, name=f"piece{k}_d", reset_less=True),
                 "nz": Signal(name=f"piece{k}_nz", reset_less=True),
                 "noa": Signal(name=f"piece{k}_noa", reset_less=True),
                 "mixed": [Signal(name=f"piece{k}_mixed{c}", reset_less=True,
                                  attrs={"keep": 1} if self._group == 1 else {})
                           for c in range(FLAG_COPIES if self._group == 1 else 1)],
                 "tail": Signal(name=f"piece{k}_tail", reset_less=True)}
        m.d.sync += [flags["data"].eq(data_e), flags["nz"].eq(nz_e), flags["noa"].eq(noa_e),
                     flags["tail"].eq(tail_e), *[f.eq(nz_e & noa_e) for f in flags["mixed"]]]
        if self._group > 1:
            flags["ref"] = Signal(2, name=f"piece{k}_ref", reset_less=True)
            m.d.sync += flags["ref"].eq(Mux(nz_e & noa_e, MIXED_HI, Mux(nz_e, ONES, ZERO)))
        return flags

    def _chain_stage(self, m, k, flags, state):
        """Candidate-chain stage ``k``: from piece ``k``'s ``flags`` (:meth:`_piece_flags`) the
        choice among pieces ``0..k``, one cycle after them. Returns the stage's state
        registers.

        Only one pair of pieces is carried as data: ``mixed`` = the highest *mixed* piece so far
        (neither all zeros nor all ones; piece 0 to begin with) and the piece under it. A mixed
        piece leads for either sign. Above the last mixed piece every piece is all zeros or all
        ones, so a leading piece there, and the piece under it, are one of four references:
        ``ZERO``, ``ONES``, ``MIXED_HI`` (the mixed piece, when it lies just below) or
        ``MIXED_LO``. Per sign the chain keeps ``hi``/``lo`` references, the leading ``index`` and
        ``sticky`` (any nonzero piece under ``lo``). This halves the multiplexed data bits
        compared with carrying two data candidates.
        """
        C, N = self.chunk, self.chunks
        data, nz, noa, mixed, tail = (flags[key] for key in ("data", "nz", "noa", "mixed", "tail"))

        def ref(sign, key):
            return Signal(2, name=f"c{k}_{sign}_{key}", reset_less=True)

        new = {"prev": Signal(LOW_BITS, name=f"c{k}_prev", reset_less=True),
               "prev_nz": Signal(name=f"c{k}_prev_nz", reset_less=True),
               "prev_tail": Signal(name=f"c{k}_prev_tail", reset_less=True),
               "prev_ref": Signal(2, name=f"c{k}_prev_ref", reset_less=True),
               "below": Signal(name=f"c{k}_below", reset_less=True),
               "mixed_hi": Signal(C, name=f"c{k}_mixed_hi", reset_less=True),
               "mixed_lo": Signal(LOW_BITS, name=f"c{k}_mixed_lo", reset_less=True),
               "mixed_hi_tail": Signal(name=f"c{k}_mixed_hi_tail", reset_less=True),
               "mixed_lo_tail": Signal(name=f"c{k}_mixed_lo_tail", reset_less=True),
               "mixed_hi_nz": Signal(name=f"c{k}_mixed_hi_nz", reset_less=True),
               "mixed_lo_nz": Signal(name=f"c{k}_mixed_lo_nz", reset_less=True),
               **{sign: {"hi": ref(sign, "hi"), "lo": ref(sign, "lo"),
                         "index": Signal(range(N), name=f"c{k}_{sign}_index", reset_less=True),
                         "sticky": Signal(name=f"c{k}_{sign}_sticky", reset_less=True)}
                  for sign in ("pos", "neg")}}
        m.d.sync += [new["prev"].eq(data[C - LOW_BITS:]), new["prev_nz"].eq(nz),
                     new["prev_tail"].eq(tail)]
        if state is None:
            # Piece 0 is the mixed candidate and both signs' choice, whatever it holds: it is
            # the answer when no piece leads (the sum is 0, or -1 in units of the LSB).
            # Nothing refers to MIXED_LO until a later piece is mixed, which also replaces the
            # mixed_lo fields, so here they only need a value that costs nothing downstream:
            # they are the prev registers, and stage 1's mux between the two goes. As a mux with
            # 0, Yosys made stage 1's flag a synchronous reset of 24 flip-flops, the critical
            # path of 12 pairs (one LUT4 and ~4 ns of routing to their LSR inputs).
            for key in ("", "_nz", "_tail"):
                new[f"mixed_lo{key}"] = new[f"prev{key}"]
            m.d.sync += [new["below"].eq(0), new["prev_ref"].eq(MIXED_HI),
                         new["mixed_hi"].eq(data), new["mixed_hi_nz"].eq(nz),
                         new["mixed_hi_tail"].eq(tail)]
            for sign in ("pos", "neg"):
                m.d.sync += [new[sign]["hi"].eq(MIXED_HI), new[sign]["lo"].eq(ZERO),
                             new[sign]["index"].eq(0), new[sign]["sticky"].eq(0)]
            return new
        m.d.sync += [
            new["below"].eq(state["below"] | state["prev_nz"]),
            new["prev_ref"].eq(Mux(mixed[0], MIXED_HI, Mux(nz, ONES, ZERO))),
            new["mixed_hi_nz"].eq(Mux(mixed[0], 1, state["mixed_hi_nz"])),
            new["mixed_lo_nz"].eq(Mux(mixed[0], state["prev_nz"], state["mixed_lo_nz"])),
            new["mixed_hi_tail"].eq(Mux(mixed[0], tail, state["mixed_hi_tail"])),
            new["mixed_lo_tail"].eq(Mux(mixed[0], state["prev_tail"], state["mixed_lo_tail"])),
        ]
        # Each flag copy steers its slice of both data pieces.
        for c, flag in enumerate(mixed):
            for key, width, value in (("mixed_hi", C, data), ("mixed_lo", LOW_BITS, state["prev"])):
                lo, hi = _copy_slices(width, FLAG_COPIES)[c]
                m.d.sync += new[key][lo:hi].eq(Mux(flag, value[lo:hi], state[key][lo:hi]))
        # A piece leads a positive sum if nonzero and a negative one if not all ones; a
        # uniform leading piece is all ones (positive) or all zeros (negative).
        for sign, lead, uniform in (("pos", nz, ONES), ("neg", noa, ZERO)):
            old, cur = state[sign], new[sign]
            m.d.sync += [
                cur["hi"].eq(Mux(lead, Mux(mixed[0], MIXED_HI, uniform), old["hi"])),
                cur["lo"].eq(Mux(lead, Mux(mixed[0], MIXED_LO, state["prev_ref"]), old["lo"])),
                cur["index"].eq(Mux(lead, k, old["index"])),
                cur["sticky"].eq(Mux(lead, state["below"], old["sticky"])),
            ]
        return new

    def _grouped_chain(self, m, flags):
        """The candidate chain with :data:`GROUP_PIECES` pieces per stage (``muxes="ecp5-pfumx"``)
        from every piece's :meth:`_piece_flags`; returns the last stage's state, as
        :meth:`_chain_stage` would one cycle later.

        A stage makes the choice :meth:`_chain_stage` makes piece by piece, for its group at
        once. Its pieces are final one cycle apart, so each waits for the group's last one; then
        one cycle registers each piece's mixed flag and reference, the next sums the group up
        from those alone (:meth:`_group_summary`: which piece is the new mixed one and which
        leads for each sign, and what that makes of the references), and the next combines
        that with the stage before, whose state waits for it, in one LUT level per field, and
        picks the two data fields through :func:`hdl.common.ecp5_mux.mux4`.
        """
        C, N, G = self.chunk, self.chunks, self._group
        state, prev_last = None, None
        for g, k0 in enumerate(range(0, N, G)):
            ks = list(range(k0, min(k0 + G, N)))
            last = ks[-1]
            # Each piece's flags in the cycle the group's last piece has them.
            waited = [{key: delay(m, f[0] if key == "mixed" else f, last - k,
                                  f"piece{k}_w_{key}") for key, f in flags[k].items()}
                      for k in ks]
            if state is None:
                # Piece 0 starts the chain, as in _chain_stage's stage 0: the mixed piece and
                # both signs' choice whatever it holds.
                data0, nz0, tail0 = (delay(m, waited[0][key], 1, f"piece0_g_{key}")
                                     for key in ("data", "nz", "tail"))
                state = {"prev": data0[C - LOW_BITS:], "prev_nz": nz0, "prev_tail": tail0,
                         "prev_ref": Const(MIXED_HI, 2), "below": Const(0, 1),
                         "mixed_hi": data0, "mixed_lo": data0[C - LOW_BITS:],
                         "mixed_hi_nz": nz0, "mixed_hi_tail": tail0,
                         "mixed_lo_nz": nz0, "mixed_lo_tail": tail0,
                         **{sign: {"hi": Const(MIXED_HI, 2), "lo": Const(ZERO, 2),
                                   "index": Const(0, range(N)), "sticky": Const(0, 1)}
                            for sign in ("pos", "neg")}}
                ks, waited = ks[1:], waited[1:]
            else:
                # The stage before registered its state one cycle after its summary, as this
                # one will; the state waits for the pieces in between.
                wait = last - prev_last - 1
                state = _each_field(state, lambda name, v, wait=wait, g=g:
                                    delay(m, v, wait, f"g{g}_{name}"))
            summary = self._group_summary(m, g, ks, waited)
            data = [delay(m, w["data"], 1, f"piece{k}_g_data") for k, w in zip(ks, waited)]
            state = self._group_stage(m, g, data, summary, state)
            prev_last = last
        return state

    def _group_summary(self, m, g, ks, waited):
        """Registered summary of pieces ``ks`` (``waited``: their :meth:`_piece_flags`, all of
        one cycle, ``mixed`` one flag) for :meth:`_group_stage`. Applying :meth:`_chain_stage`
        to them in turn, the last *mixed* piece replaces the data fields and the last *leading*
        piece of a sign sets that sign's references, index and sticky bit (a mixed piece leads
        for both signs, so no later piece changes what the references point at)."""
        N = self.chunks
        nz, noa, tail, mixed, refs = ([w[key] for w in waited]
                                      for key in ("nz", "noa", "tail", "mixed", "ref"))

        def last_of(flags, values, default):
            out = default
            for flag, value in zip(flags, values):
                out = Mux(flag, value, out)
            return out

        def reg(name, value, shape=1):
            sig = Signal(shape, name=f"g{g}_s_{name}", reset_less=True)
            m.d.sync += sig.eq(value)
            return sig

        n = len(ks)
        out = {
            # Which data: 0 the old mixed piece, i + 1 piece ks[i].
            "sel": reg("sel", last_of(mixed, range(1, n + 1), 0), 2),
            "any_mixed": reg("any_mixed", Cat(*mixed).any()),
            "mixed_hi_tail": reg("mixed_hi_tail", last_of(mixed, tail, 0)),
            # The piece under the last mixed one: ks[i - 1], or (i = 0) the old prev piece.
            "mixed_lo_old": reg("mixed_lo_old", last_of(mixed, [i == 0 for i in range(n)], 0)),
            "mixed_lo_nz": reg("mixed_lo_nz", last_of(mixed, [0, *nz[:-1]], 0)),
            "mixed_lo_tail": reg("mixed_lo_tail", last_of(mixed, [0, *tail[:-1]], 0)),
            "nz_under_last": reg("nz_under_last", Cat(0, *nz[:-1]).any()),
            "last_ref": reg("last_ref", refs[-1], 2),
            "last_nz": reg("last_nz", nz[-1]),
            "last_tail": reg("last_tail", tail[-1]),
        }
        for sign, lead, uniform in (("pos", nz, ONES), ("neg", noa, ZERO)):
            out[sign] = {
                "any": reg(f"{sign}_any", Cat(*lead).any()),
                "hi": reg(f"{sign}_hi", last_of(lead, [Mux(x, MIXED_HI, uniform)
                                                         for x in mixed], 0), 2),
                # The piece under the leading one: ks[i - 1] (its reference), or the old prev
                # piece's reference (lo_old), unless the leading piece is mixed.
                "lo": reg(f"{sign}_lo", last_of(lead, [Mux(mixed[i], MIXED_LO, refs[i - 1] if i
                                                           else 0) for i in range(n)], 0), 2),
                "lo_old": reg(f"{sign}_lo_old", last_of(lead, [~mixed[0] if i == 0 else 0
                                                               for i in range(n)], 0)),
                "index": reg(f"{sign}_index", last_of(lead, ks, 0), range(N)),
                # Nonzero pieces of the group under the one under the leading one, and whether
                # the old prev piece is under it too.
                "below": reg(f"{sign}_below", last_of(lead, [Cat(0, *nz[:max(i - 1, 0)]).any()
                                                             for i in range(n)], 0)),
                "prev_under": reg(f"{sign}_prev_under", last_of(lead, [i > 0 for i in range(n)],
                                                                0)),
            }
        return out

    def _group_stage(self, m, g, data, summary, state):
        """Stage ``g`` of :meth:`_grouped_chain`: the state after the group, from the one before
        (``state``), the group's ``summary`` and its pieces' ``data`` (all of one cycle)."""
        C = self.chunk
        S, old = summary, state
        tops = [d[C - LOW_BITS:] for d in data]
        any_mixed = S["any_mixed"]
        cur = {
            "below": old["below"] | old["prev_nz"] | S["nz_under_last"],
            "prev_ref": S["last_ref"], "prev_nz": S["last_nz"], "prev_tail": S["last_tail"],
            "mixed_hi_nz": any_mixed | old["mixed_hi_nz"],
            "mixed_lo_nz": Mux(any_mixed, Mux(S["mixed_lo_old"], old["prev_nz"],
                                              S["mixed_lo_nz"]), old["mixed_lo_nz"]),
            "mixed_hi_tail": Mux(any_mixed, S["mixed_hi_tail"], old["mixed_hi_tail"]),
            "mixed_lo_tail": Mux(any_mixed, Mux(S["mixed_lo_old"], old["prev_tail"],
                                                S["mixed_lo_tail"]), old["mixed_lo_tail"]),
        }
        for sign in ("pos", "neg"):
            s, o = S[sign], old[sign]
            cur[sign] = {
                "hi": Mux(s["any"], s["hi"], o["hi"]),
                "lo": Mux(s["any"], Mux(s["lo_old"], old["prev_ref"], s["lo"]), o["lo"]),
                "index": Mux(s["any"], s["index"], o["index"]),
                "sticky": Mux(s["any"], old["below"] | (s["prev_under"] & old["prev_nz"])
                              | s["below"], o["sticky"]),
            }
        # The data: the old mixed piece or one of the group's, and the piece under it.
        pad = 3 - len(data)
        hi = mux4(m, S["sel"], [old["mixed_hi"], *data, *[data[-1]] * pad], f"g{g}_hi_mux")
        lo = mux4(m, S["sel"], [old["mixed_lo"], old["prev"], *tops[:-1], *[tops[-1]] * pad],
                  f"g{g}_lo_mux")
        cur.update(prev=tops[-1], mixed_hi=hi, mixed_lo=lo)

        def register(name, value):
            sig = Signal(Value.cast(value).shape(), name=f"g{g}_{name}", reset_less=True)
            m.d.sync += sig.eq(value)
            return sig

        return _each_field(cur, register)

    def _context_ring(self, m, newest, enable, name):
        """The state of the context whose block arrives now, for a state register ``newest``
        that takes the value of each block (written under ``enable``): ``newest`` itself with
        one context, else the oldest of ``contexts`` registers that shift on ``enable``.

        The contexts' blocks arrive in a fixed order (0, 1, .., contexts-1, 0, ..), so after a
        block has written ``newest`` the ring holds every context's state in turn and the next
        block of a context finds its own at the end; idle cycles shift nothing."""
        ring = [newest]
        for k in range(1, self.contexts):
            reg = Signal.like(newest, name=f"{name}_ctx{k}")
            with m.If(enable):
                m.d.sync += reg.eq(ring[-1])
            ring.append(reg)
        return ring[-1]

    def _context_piece(self, m, k, now, share, carry):
        """Piece ``k`` with :attr:`contexts` contexts: ``(total, piece)`` as the one-context
        piece gives them (this cycle's adder output, and the register holding it next cycle).

        Each context's piece is a register of a ring that shifts when a block passes (``now``
        valid): the adder adds the share to the oldest, the arriving block's context, and the
        newest takes the sum. An idle cycle shifts nothing, so its stale share or carry (after a
        reset) is never kept, and a reset empties every context. A group's last block leaves
        its context empty: with ``generic`` adders the ring takes 0, with ``ecp5-ccu2c`` a ring
        of fresh flags beside it makes the context's next add ignore the piece (in the carry
        chain's LUT4s, as with one context)."""
        C = self.chunk
        valid, last = now["valid"], now["valid"] & now["last"]
        newest = Signal(C, name=f"acc{k}")
        oldest = self._context_ring(m, newest, valid, f"acc{k}")
        if self.adders == "generic":
            total = Signal(C + 1, name=f"total{k}")
            m.d.comb += total.eq(oldest + share + carry)
            with m.If(valid):
                m.d.sync += newest.eq(Mux(last, 0, total[:C]))
            piece = Signal(C, name=f"piece{k}", reset_less=True)
            m.d.sync += piece.eq(total[:C])
            return total, piece
        fresh = Signal(init=1, name=f"fresh{k}")
        fresh_oldest = self._context_ring(m, fresh, valid, f"fresh{k}")
        zeros = Const(0, 2)
        total = clearable_add(m, Cat(oldest, zeros), Cat(share, zeros), carry, fresh_oldest,
                              f"piece{k}_add")
        with m.If(valid):
            m.d.sync += [newest.eq(total[:C]), fresh.eq(last)]
        return total, newest

    def elaborate(self, platform):
        m = Module()
        m.submodules.rounder = rounder = self.rounder
        C, N, J = self.chunk, self.chunks, self.window_chunks

        # Group bookkeeping at the entry: NaN sticky and block count over the group. The count
        # runs in P + 1 bits for max_blocks = 2**P, and g_bad keeps the flag after the count
        # wraps. A group's first block sets the count by the register's synchronous set / reset
        # (no compare, no saturation mux).
        top = self.max_blocks.bit_length() - 1
        assert self.max_blocks == 1 << top
        g_bad = Signal()
        # The index the group's next block will have (blocks so far): its bit P flags that
        # block as past the capacity, so the flag reads a register bit. (As bit P of "index
        # so far + 1", a reduction that Yosys maps onto a carry chain, it was MXFP4's and
        # MXFP8 E4M3 x E5M2's critical path at 200 MHz, 5.6-6.5 ns.)
        g_next = Signal(top + 1, reset_less=True)
        # With contexts, each context's count and flag: the registers written here are the
        # newest of a ring, and the block reads its own context's from the oldest.
        g_next_now = self._context_ring(m, g_next, self.valid, "g_next")
        g_bad_now = self._context_ring(m, g_bad, self.valid, "g_bad")
        bad_now = self.nan | (~self.first & (g_next_now[top] | g_bad_now))
        with m.If(self.valid & self.first):
            m.d.sync += g_next.eq(1)
        with m.Elif(self.valid):
            m.d.sync += g_next.eq(g_next_now + 1)
        with m.If(self.valid):
            m.d.sync += g_bad.eq(bad_now)

        # Entry register: the block term shifted within its first piece.
        def stage_fields(k):
            return {
                "valid": Signal(name=f"s{k}_valid"),
                "last": Signal(name=f"s{k}_last"),
                "bad": Signal(name=f"s{k}_bad"),
                "q": Signal(range(SCALE_SUM_MAX // C + 1), name=f"s{k}_q", reset_less=True),
                "window": Signal(J * C, name=f"s{k}_window", reset_less=True),
                "neg": Signal(name=f"s{k}_neg", reset_less=True),
                # Piece k's share select (window piece hits, then the ones fill), registered a
                # stage ahead from the previous stage's q: as compares of q in front of the
                # share mux (q fanning out to every share bit) it was the critical path of the
                # E5M2 pairs (7.5 ns, mostly routing).
                "sel": [Signal(J + 1, name=f"s{k}_sel{c}", reset_less=True, attrs={"keep": 1})
                        for c in range(SELECT_COPIES)],
            }

        def select_next(prev, cur, k):
            """Register stage ``k``'s share select from the stage (or entry register) before it:
            hit ``j`` when the term starts ``j`` pieces below piece ``k``, fill (all ones) above
            a negative term; nothing without a valid block, so an idle piece adds zero."""
            q, valid = prev["q"], prev["valid"]
            hits = [valid & (q == k - j) if k - j >= 0 else Const(0) for j in range(J)]
            fill = valid & (q < k - J + 1) & prev["neg"] if k - J + 1 > 0 else Const(0)
            m.d.sync += [sel.eq(Cat(*hits, fill)) for sel in cur["sel"]]

        # The shift within the first piece takes two registered steps, fine then coarse
        # (multiples of FINE_SHIFT): as one barrel shifter it was the critical path at block 32.
        # Fine first: its 8:1 selects (three cells per bit) then cover only the sum's width plus
        # 7 bits and the wide step is 4:1 (at block 32 MXINT8: 28 + 52 bits, not 45 + 52; the
        # fine amount's fanout to the wide step was MXINT8's critical path, 5.2 ns of which 4.0
        # routing).
        fine_bits = FINE_SHIFT.bit_length() - 1
        # scale_sum = C * q + FINE_SHIFT * coarse + fine: q and coarse are bit fields of
        # scale_sum // FINE_SHIFT when C is a power of two, else a table of its 6 bits.
        eighths = self.scale_sum[fine_bits:]
        per_chunk = C // FINE_SHIFT
        if is_power_of_two(per_chunk):
            split = per_chunk.bit_length() - 1
            q, coarse_amount = eighths[split:], eighths[:split]
        else:
            codes = range(1 << len(eighths))
            q = _lookup(eighths, [v // per_chunk for v in codes])
            coarse_amount = _lookup(eighths, [v % per_chunk for v in codes])
        pre = {"valid": Signal(name="pre_valid"), "last": Signal(name="pre_last"),
               "bad": Signal(name="pre_bad"),
               "q": Signal(range(SCALE_SUM_MAX // C + 1), name="pre_q", reset_less=True),
               "fine": Signal(signed(self.sum_width + FINE_SHIFT - 1), name="pre_fine",
                              reset_less=True),
               "coarse": Signal(len(coarse_amount), name="pre_coarse", reset_less=True),
               "neg": Signal(name="pre_neg", reset_less=True)}
        m.d.sync += [
            pre["valid"].eq(self.valid), pre["last"].eq(self.last), pre["bad"].eq(bad_now),
            pre["q"].eq(q),
            pre["fine"].eq(self.sum.as_signed() << self.scale_sum[:fine_bits]),
            pre["coarse"].eq(coarse_amount),
            pre["neg"].eq(self.sum < 0),
        ]
        s0 = stage_fields(0)
        m.d.sync += [
            s0["valid"].eq(pre["valid"]), s0["last"].eq(pre["last"]), s0["bad"].eq(pre["bad"]),
            s0["q"].eq(pre["q"]),
            s0["window"].eq(pre["fine"] << Cat(Const(0, fine_bits), pre["coarse"])),  # sign-ext.
            s0["neg"].eq(pre["neg"]),
        ]
        select_next(pre, s0, 0)

        # Delay line: stage k holds the block piece k works on next cycle.
        stages = [s0]
        for k in range(1, N + 1 + self._chain_delay):
            prev, cur = stages[-1], stage_fields(k)
            # "sel" is not copied: each stage computes its own (select_next below).
            keep = ("valid", "last", "bad") if k > N - 1 else tuple(key for key in cur
                                                                   if key != "sel")
            for key in keep:
                m.d.sync += cur[key].eq(prev[key])
            if k < N:
                select_next(prev, cur, k)
            stages.append(cur)

        # Each piece is final one cycle after the previous one. The two pieces the rounder needs
        # (the leading piece and the top of the one below it) and the sticky bit under them are
        # chosen while the pieces arrive: stage k of a candidate chain compares piece k with the
        # best choice of pieces 0..k-1, so no stage looks at more than one piece. The leading
        # piece is the highest nonzero one for a positive sum and the highest not-all-ones one for
        # a negative sum; the sign is only known with the top piece, so the chain keeps one
        # candidate per sign and the sign picks one at the end.
        # The pieces stay cleared for two cycles after a reset: the select registers and then
        # the share registers still hold the selects and shares of blocks that were in flight
        # (resetting the selects instead costs a LUT4 each). The ecp5-ccu2c carry registers
        # have no reset (see below), so there the pieces stay cleared for one cycle more: a
        # carry left over from those shares adds at most 1 to a cleared piece with a zero share,
        # which carries no further.
        after_reset = [Signal(name=f"after_reset{i}", reset_less=True)
                       for i in range(2 if self.adders == "generic" else 3)]
        m.d.sync += after_reset[0].eq(ResetSignal())
        m.d.sync += [cur.eq(ResetSignal() | prev)
                     for prev, cur in zip(after_reset, after_reset[1:])]
        carry = Const(0)
        chain = None
        flags = []
        for k in range(N):
            src, now = stages[k], stages[k + 1]
            # Piece k's share of the term, registered one stage ahead of its adder: window piece
            # j when the term starts j pieces below, all ones above a negative term, else 0
            # (the zero case is the register's synchronous reset, so each bit is one LUT4).
            # Each copy of the select steers its slice of the share bits.
            share = Signal(C, name=f"share{k}", reset_less=True)
            for sel, (lo, hi) in zip(src["sel"], _copy_slices(C, SELECT_COPIES)):
                value = Const(-1, hi - lo)
                for j in reversed(range(J)):
                    value = Mux(sel[j], src["window"][j * C + lo:j * C + hi], value)
                m.d.sync += share[lo:hi].eq(Mux(sel.any(), value, 0))
            # The piece starts again from 0 after a group's last block (and after a reset).
            # Without a block the share and the carry are zero, so the piece holds its value
            # with no enable.
            clear = ResetSignal() | after_reset[-1] | (now["valid"] & now["last"])
            acc = Signal(C, name=f"acc{k}", reset_less=True)
            if self.contexts > 1:
                total, piece = self._context_piece(m, k, now, share, carry)
            elif self.adders == "generic":
                # The clear and the domain reset are one condition, so they map to the
                # register's one synchronous reset: as a domain reset plus a clear mux the piece
                # cost a LUT4 per bit (31 per piece). The candidate chain needs the group's sum,
                # so it keeps its own register of the adder output.
                total = Signal(C + 1, name=f"total{k}")
                m.d.comb += total.eq(acc + share + carry)
                with m.If(clear):
                    m.d.sync += acc.eq(0)
                with m.Else():
                    m.d.sync += acc.eq(total[:C])
                piece = Signal(C, name=f"piece{k}", reset_less=True)
                m.d.sync += piece.eq(total[:C])
            else:
                # The register always takes the sum; the next cycle's adder ignores it after a
                # clear, in the carry chain's own LUT4s. It is the chain's piece register too.
                fresh = Signal(name=f"fresh{k}", reset_less=True)
                m.d.sync += fresh.eq(clear)
                # Two more bits of zeros on top: the carry out is then the sum of a chain cell
                # (nextpnr feeds a chain's own carry out to the fabric through a cell it adds,
                # and then left the top sum bits' registers unpacked, ~1 ns of routing away:
                # the end of MXFP4's critical path, carry register -> piece register).
                zeros = Const(0, 2)
                total = clearable_add(m, Cat(acc, zeros), Cat(share, zeros), carry, fresh,
                                      f"piece{k}_add")
                m.d.sync += acc.eq(total[:C])
                piece = acc
            # Without a reset on ecp5-ccu2c: nextpnr puts the piece registers beside their chain
            # only where the slice's other register has the same (no) reset, and the carry
            # register sits beside the top of the chain.
            next_carry = Signal(name=f"carry{k + 1}", reset_less=self.adders != "generic")
            m.d.sync += next_carry.eq(total[C])           # an idle piece adds 0: no carry
            carry = next_carry
            flags.append(self._piece_flags(m, k, total[:C], piece))
            if self._group == 1:
                chain = self._chain_stage(m, k, flags[k], chain)
        if self._group > 1:
            chain = self._grouped_chain(m, flags)

        # Rounding stage 1: the sign (the top piece's MSB) picks a candidate, whose references
        # become the two window pieces.
        done = stages[N + self._chain_delay]
        neg = chain["prev"][-1]
        pick = {key: Mux(neg, chain["neg"][key], chain["pos"][key])
                for key in ("hi", "lo", "index")}

        def resolve(r, mixed_hi, mixed_lo, ones):
            return Mux(r == MIXED_HI, mixed_hi, Mux(r == MIXED_LO, mixed_lo,
                                                    Mux(r == ONES, ones, 0)))

        lo_ref = pick["lo"]

        # Per sign, anything nonzero under its window: the pieces under its low piece, and that
        # piece's own low bits.
        below_window = {sign: chain[sign]["sticky"] | resolve(chain[sign]["lo"],
                                                              chain["mixed_hi_tail"],
                                                              chain["mixed_lo_tail"], 1)
                        for sign in ("pos", "neg")}

        # The whole low piece of a negative sum's window is zero.
        neg_lo = chain["neg"]["lo"]
        neg_lo_zero = (resolve(neg_lo, ~chain["mixed_hi_nz"], ~chain["mixed_lo_nz"], 0)
                       | (neg_lo == ZERO))
        under = Mux(neg, below_window["neg"], below_window["pos"])
        w_valid, w_bad, w_neg, w_sticky = (Signal() for _ in range(4))
        w_cin_lo, w_cin_hi = Signal(), Signal()
        w_hi, w_lo = Signal(C, reset_less=True), Signal(LOW_BITS, reset_less=True)
        w_index = Signal(range(N), reset_less=True)
        m.d.sync += [
            w_valid.eq(done["valid"] & done["last"]), w_bad.eq(done["bad"]), w_neg.eq(neg),
            # The window of a negative sum is inverted here, in the LUT that resolves it.
            w_hi.eq(resolve(pick["hi"], chain["mixed_hi"], 0, Const(-1, C)) ^ neg.replicate(C)),
            w_lo.eq(resolve(lo_ref, chain["mixed_hi"][C - LOW_BITS:], chain["mixed_lo"],
                            Const(-1, LOW_BITS)) ^ neg.replicate(LOW_BITS)),
            w_index.eq(pick["index"]), w_sticky.eq(under),
            # The +1 of a negation reaches the window only if everything under it is zero, and
            # the high piece only if the whole low piece is zero too. Both only matter for a
            # negative sum, so they read the negative candidate alone, not the pick (six inputs
            # each instead of nine: w_cin_hi behind the pick was a critical path of the FP4,
            # E2M3 and INT8 pairs, 4.8-5.7 ns).
            w_cin_lo.eq(neg & ~below_window["neg"]),
            w_cin_hi.eq(neg & ~chain["neg"]["sticky"] & neg_lo_zero),
        ]

        # Rounding stages 2 and 3: |x| of a negative sum is ~x + 1 (the window is inverted
        # already), two increments side by side instead of one 57-bit carry chain, each in two
        # registered halves (a 32-bit increment behind its carry-in select was the critical path
        # of several pairs, 5.9-6.2 ns).
        u_valid, u_bad, u_neg, u_sticky = Signal(), Signal(), Signal(), Signal()
        u_index = Signal(range(N), reset_less=True)

        def increment_low_half(name, value, cin):
            """``cin`` added to the low half of ``value``: (low half + carry, top half)."""
            half = len(value) // 2
            low = Signal(half + 1, name=f"u_{name}", reset_less=True)
            top = Signal(len(value) - half, name=f"u_{name}_top", reset_less=True)
            m.d.sync += [low.eq(value[:half] + cin), top.eq(value[half:])]
            return low, top

        u_lo = increment_low_half("lo", w_lo, w_cin_lo)
        u_hi = increment_low_half("hi", w_hi, w_cin_hi)
        m.d.sync += [u_valid.eq(w_valid), u_bad.eq(w_bad), u_neg.eq(w_neg),
                     u_sticky.eq(w_sticky), u_index.eq(w_index)]

        def carry_up(low, top):
            """The top half plus the low half's carry, over the low half."""
            return Cat(low[:-1], top + low[-1])

        v_valid, v_bad, v_neg, v_sticky = Signal(), Signal(), Signal(), Signal()
        v_lo, v_hi = Signal(LOW_BITS), Signal(C + 1)
        v_exp = Signal(signed(11))
        # u_index * C: a shift, or a table (Yosys puts a multiply by a constant into a DSP).
        index_weight = (u_index << (C.bit_length() - 1) if is_power_of_two(C)
                        else _lookup(u_index, [k * C for k in range(N)]))
        # Bit 0 of the window (bit C - LOW_BITS of piece index-1) weighs
        # 2**(index * C - LOW_BITS + lsb_exp - 254).
        m.d.sync += [
            v_valid.eq(u_valid), v_bad.eq(u_bad), v_neg.eq(u_neg), v_sticky.eq(u_sticky),
            v_lo.eq(carry_up(*u_lo)),           # a carry out of the low piece is dropped
            v_hi.eq(carry_up(*u_hi)),
            v_exp.eq(index_weight + (self.lsb_exp - 254 - LOW_BITS)),
        ]
        v_mag = Cat(v_lo, v_hi)
        m.d.comb += [
            rounder.sign.eq(v_neg),
            rounder.mag.eq(v_mag),
            rounder.exp.eq(v_exp),
            rounder.sticky.eq(v_sticky),
        ]
        r = delay(m, Cat(v_valid, v_bad), rounder.latency, "r")      # alongside the rounder
        m.d.sync += [
            self.o_valid.eq(r[0]),
            self.o.eq(Mux(r[1], FP32_QNAN, rounder.o)),
        ]
        return m

