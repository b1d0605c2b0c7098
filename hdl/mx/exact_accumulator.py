"""Exact (Kulisch) accumulation of MX block sums across a group, one RNE rounding to FP32 at the end
(MX_SPEC §11, dot across blocks, mode ``exact``)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed

from hdl.common import is_int
from hdl.common.fp32 import RoundToFP32
from hdl.common.pipeline import delay

from .block_accumulator import BlockAccumulator
from .dequantize import QNAN as FP32_QNAN

__all__ = ["ExactAccumulator"]

#: Span of ``s_a + s_b`` in scale codes: 0 .. 254 + 254.
SCALE_SUM_MAX = 508
#: Guard bits at least reserved above the largest block term for the group-length capacity.
MIN_GUARD = 16
#: The entry shift's fine step (the coarse step shifts by multiples of it).
FINE_SHIFT = 8
#: Copies of each piece's "mixed" flag in the candidate chain: each drives a part of the mux.
FLAG_COPIES = 2
#: Candidate-chain references to a window piece (see ``ExactAccumulator._chain_stage``).
ZERO, ONES, MIXED_HI, MIXED_LO = range(4)


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
    two pieces under the leading one found so far and a sticky bit (one candidate per sign, since
    the sign comes with the top piece), so the rounding stage only picks a candidate, negates a
    negative window and rounds it with :class:`RoundToFP32`. Any number of groups are in flight;
    one block per cycle.

    Capacity: a group of up to :attr:`max_blocks` blocks is exact. A longer group, or a group
    with a NaN block, gives the canonical NaN ``0x7FC00000`` (never a wrapped sum).

    The datapath is free-running: ``valid`` travels with each block; ``o_valid`` pulses with a
    group's result :attr:`latency` cycles after its last block.

    Parameters
    ----------
    sum_width : int
        Width of the signed block sums.
    lsb_exp : int
        ``log2(a_lsb * b_lsb)``, the weight of one unit of ``sum``.
    chunk : int
        Bits per accumulator piece (16..64).
    round_stages : int
        Register stages inside :class:`RoundToFP32`.

    Members
    -------
    As for :class:`BlockAccumulator`.
    """

    def __init__(self, sum_width, lsb_exp, *, chunk=32, round_stages=2):
        if not (is_int(chunk) and 16 <= chunk <= 64):
            raise ValueError(f"chunk must be an integer in 16..64, not {chunk!r}")
        super().__init__(sum_width, lsb_exp)
        self.chunk = chunk
        self.chunks = -(-(sum_width + SCALE_SUM_MAX + MIN_GUARD) // chunk)
        self.width = self.chunks * chunk
        # |partial sum| <= n * 2**(sum_width - 1) * 2**508 must stay below 2**(width - 1).
        self.max_blocks = 1 << (self.width - sum_width - SCALE_SUM_MAX)
        # A block term spans this many pieces once shifted by scale_sum % chunk.
        self.window_chunks = -(-(sum_width + chunk - 1) // chunk)
        self.rounder = RoundToFP32(2 * chunk + 1, 11, stages=round_stages)

    @property
    def latency(self):
        """Cycles from a group's last block at the inputs to ``o_valid``."""
        # two entry registers (coarse, fine shift), one stage per piece, the candidate chain's
        # three registers behind the top piece's adder, the candidate pick, the negation, the
        # rounder and the output register.
        return 2 + self.chunks + 3 + 1 + 1 + self.rounder.latency + 1

    def _chain_stage(self, m, k, total, state):
        """Candidate-chain stage ``k``: registers piece ``k`` (``total``, this cycle's adder
        output), its flags one cycle later, and one cycle after that the choice among pieces
        ``0..k``. Returns the stage's state registers, three cycles behind the adder.

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
        piece = Signal(C, name=f"piece{k}", reset_less=True)
        m.d.sync += piece.eq(total)
        # Flags one cycle after the piece, with the piece delayed beside them: the 32-bit
        # compares would otherwise sit in series with the mux they steer.
        data = Signal(C, name=f"piece{k}_d", reset_less=True)
        nz, noa = Signal(name=f"piece{k}_nz", reset_less=True), \
            Signal(name=f"piece{k}_noa", reset_less=True)
        mixed = [Signal(name=f"piece{k}_mixed{c}", reset_less=True, attrs={"keep": 1})
                 for c in range(FLAG_COPIES)]
        m.d.sync += [data.eq(piece), nz.eq(piece != 0), noa.eq(piece != (1 << C) - 1),
                     *[f.eq((piece != 0) & (piece != (1 << C) - 1)) for f in mixed]]

        def ref(sign, key):
            return Signal(2, name=f"c{k}_{sign}_{key}", reset_less=True)

        new = {"prev": Signal(C, name=f"c{k}_prev", reset_less=True),
               "prev_nz": Signal(name=f"c{k}_prev_nz", reset_less=True),
               "prev_ref": Signal(2, name=f"c{k}_prev_ref", reset_less=True),
               "below": Signal(name=f"c{k}_below", reset_less=True),
               "mixed_hi": Signal(C, name=f"c{k}_mixed_hi", reset_less=True),
               "mixed_lo": Signal(C, name=f"c{k}_mixed_lo", reset_less=True),
               "mixed_hi_nz": Signal(name=f"c{k}_mixed_hi_nz", reset_less=True),
               "mixed_lo_nz": Signal(name=f"c{k}_mixed_lo_nz", reset_less=True),
               **{sign: {"hi": ref(sign, "hi"), "lo": ref(sign, "lo"),
                         "index": Signal(range(N), name=f"c{k}_{sign}_index", reset_less=True),
                         "sticky": Signal(name=f"c{k}_{sign}_sticky", reset_less=True)}
                  for sign in ("pos", "neg")}}
        m.d.sync += [new["prev"].eq(data), new["prev_nz"].eq(nz)]
        if state is None:
            # Piece 0 is the mixed candidate and both signs' choice, whatever it holds: it is
            # the answer when no piece leads (the sum is 0, or -1 in units of the LSB).
            m.d.sync += [new["below"].eq(0), new["prev_ref"].eq(MIXED_HI),
                         new["mixed_hi"].eq(data), new["mixed_lo"].eq(0),
                         new["mixed_hi_nz"].eq(nz), new["mixed_lo_nz"].eq(0)]
            for sign in ("pos", "neg"):
                m.d.sync += [new[sign]["hi"].eq(MIXED_HI), new[sign]["lo"].eq(ZERO),
                             new[sign]["index"].eq(0), new[sign]["sticky"].eq(0)]
            return new
        m.d.sync += [
            new["below"].eq(state["below"] | state["prev_nz"]),
            new["prev_ref"].eq(Mux(mixed[0], MIXED_HI, Mux(nz, ONES, ZERO))),
            new["mixed_hi_nz"].eq(Mux(mixed[0], 1, state["mixed_hi_nz"])),
            new["mixed_lo_nz"].eq(Mux(mixed[0], state["prev_nz"], state["mixed_lo_nz"])),
        ]
        # Each flag copy steers its slice of both data pieces.
        half = C // FLAG_COPIES
        for c, flag in enumerate(mixed):
            lo, hi = c * half, (C if c == FLAG_COPIES - 1 else (c + 1) * half)
            m.d.sync += [
                new["mixed_hi"][lo:hi].eq(Mux(flag, data[lo:hi], state["mixed_hi"][lo:hi])),
                new["mixed_lo"][lo:hi].eq(Mux(flag, state["prev"][lo:hi],
                                              state["mixed_lo"][lo:hi])),
            ]
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

    def elaborate(self, platform):
        m = Module()
        m.submodules.rounder = rounder = self.rounder
        C, N, J = self.chunk, self.chunks, self.window_chunks
        shift_bits = (C - 1).bit_length()

        # Group bookkeeping at the entry: NaN sticky and block count over the group.
        count_max = self.max_blocks + 1
        g_bad = Signal()
        g_count = Signal(range(count_max + 1))
        count_now = Mux(self.first, 1, Mux(g_count == count_max, count_max, g_count + 1))
        bad_now = self.nan | (count_now > self.max_blocks) | (~self.first & g_bad)
        with m.If(self.valid):
            m.d.sync += [g_bad.eq(bad_now), g_count.eq(count_now)]

        # Entry register: the block term shifted within its first piece.
        def stage_fields(k):
            return {
                "valid": Signal(name=f"s{k}_valid"),
                "last": Signal(name=f"s{k}_last"),
                "bad": Signal(name=f"s{k}_bad"),
                "q": Signal(range(SCALE_SUM_MAX // C + 1), name=f"s{k}_q", reset_less=True),
                "window": Signal(J * C, name=f"s{k}_window", reset_less=True),
                "neg": Signal(name=f"s{k}_neg", reset_less=True),
            }

        # The shift within the first piece takes two registered steps, coarse (multiples of
        # FINE_SHIFT) then fine: as one barrel shifter it was the critical path at block 32.
        fine_bits = FINE_SHIFT.bit_length() - 1
        pre = {"valid": Signal(name="pre_valid"), "last": Signal(name="pre_last"),
               "bad": Signal(name="pre_bad"),
               "q": Signal(range(SCALE_SUM_MAX // C + 1), name="pre_q", reset_less=True),
               "coarse": Signal(signed(self.sum_width + C - FINE_SHIFT), name="pre_coarse",
                                reset_less=True),
               "fine": Signal(fine_bits, name="pre_fine", reset_less=True),
               "neg": Signal(name="pre_neg", reset_less=True)}
        coarse_amount = self.scale_sum[fine_bits:shift_bits]
        m.d.sync += [
            pre["valid"].eq(self.valid), pre["last"].eq(self.last), pre["bad"].eq(bad_now),
            pre["q"].eq(self.scale_sum[shift_bits:]),
            pre["coarse"].eq(self.sum.as_signed() << Cat(Const(0, fine_bits), coarse_amount)),
            pre["fine"].eq(self.scale_sum[:fine_bits]),
            pre["neg"].eq(self.sum < 0),
        ]
        s0 = stage_fields(0)
        m.d.sync += [
            s0["valid"].eq(pre["valid"]), s0["last"].eq(pre["last"]), s0["bad"].eq(pre["bad"]),
            s0["q"].eq(pre["q"]),
            s0["window"].eq((pre["coarse"] << pre["fine"]).as_signed()),   # sign-extends
            s0["neg"].eq(pre["neg"]),
        ]

        # Delay line: stage k holds the block piece k works on next cycle.
        stages = [s0]
        for k in range(1, N + 4):
            prev, cur = stages[-1], stage_fields(k)
            keep = ("valid", "last", "bad") if k > N - 1 else tuple(cur)
            for key in keep:
                m.d.sync += cur[key].eq(prev[key])
            stages.append(cur)

        # Each piece is final one cycle after the previous one. The two pieces the rounder needs
        # (the leading piece and the one below it) and the sticky bit under them are chosen while
        # the pieces arrive: stage k of a candidate chain compares piece k with the best choice
        # of pieces 0..k-1, so no stage looks at more than one piece. The leading piece is the
        # highest nonzero one for a positive sum and the highest not-all-ones one for a negative
        # sum; the sign is only known with the top piece, so the chain keeps one candidate per
        # sign and the sign picks one at the end.
        carry = Const(0)
        chain = None
        for k in range(N):
            src, now = stages[k], stages[k + 1]
            # Piece k's share of the term, registered one stage ahead of its adder: window piece
            # j when the term starts j pieces below, all ones above a negative term, else 0
            # (the zero case is the register's synchronous reset, so each bit is one LUT4).
            hits = [src["q"] == k - j for j in range(J) if k - j >= 0]
            above = (src["q"] < k - J + 1) if k - J + 1 > 0 else Const(0)
            value = Const((1 << C) - 1, C)
            for j in reversed(range(len(hits))):
                value = Mux(hits[j], src["window"][j * C:(j + 1) * C], value)
            share = Signal(C, name=f"share{k}", reset_less=True)
            m.d.sync += share.eq(Mux(Cat(*hits).any() | (above & src["neg"]), value, 0))
            # The piece clears itself after a group's last block, so the next group starts at 0
            # with no mux in front of the adder (a synchronous reset of the register).
            acc = Signal(C, name=f"acc{k}")
            total = Signal(C + 1, name=f"total{k}")
            m.d.comb += total.eq(acc + share + carry)
            next_carry = Signal(name=f"carry{k + 1}")
            m.d.sync += next_carry.eq(now["valid"] & total[C])
            with m.If(now["valid"]):
                m.d.sync += acc.eq(Mux(now["last"], 0, total[:C]))
            carry = next_carry
            chain = self._chain_stage(m, k, total[:C], chain)

        # Rounding stage 1: the sign (the top piece's MSB) picks a candidate, whose references
        # become the two window pieces.
        done = stages[N + 3]
        neg = chain["prev"][C - 1]
        pick = {key: Mux(neg, chain["neg"][key], chain["pos"][key])
                for key in ("hi", "lo", "index", "sticky")}

        def resolve(r):
            ones = Const(-1, C)
            return Mux(r == MIXED_HI, chain["mixed_hi"],
                       Mux(r == MIXED_LO, chain["mixed_lo"], Mux(r == ONES, ones, 0)))

        lo_zero = Mux(pick["lo"] == MIXED_HI, ~chain["mixed_hi_nz"],
                      Mux(pick["lo"] == MIXED_LO, ~chain["mixed_lo_nz"], pick["lo"] == ZERO))
        w_valid, w_bad, w_neg, w_sticky, w_lo_zero = (Signal() for _ in range(5))
        w_hi, w_lo = Signal(C, reset_less=True), Signal(C, reset_less=True)
        w_index = Signal(range(N), reset_less=True)
        m.d.sync += [
            w_valid.eq(done["valid"] & done["last"]), w_bad.eq(done["bad"]), w_neg.eq(neg),
            w_hi.eq(resolve(pick["hi"])), w_lo.eq(resolve(pick["lo"])),
            w_index.eq(pick["index"]), w_sticky.eq(pick["sticky"]), w_lo_zero.eq(lo_zero),
        ]

        # Rounding stage 2: |x| of a negative sum is ~x + 1, whose +1 reaches the window only if
        # everything below it is zero, and the high piece only if the low piece is zero too:
        # two 32-bit increments side by side instead of one 65-bit carry chain.
        v_valid, v_bad, v_neg, v_sticky = Signal(), Signal(), Signal(), Signal()
        v_lo, v_hi = Signal(C), Signal(C + 1)
        v_exp = Signal(signed(11))
        # Bit 0 of the window (piece index-1) weighs 2**((index - 1) * C + lsb_exp - 254).
        m.d.sync += [
            v_valid.eq(w_valid), v_bad.eq(w_bad), v_neg.eq(w_neg), v_sticky.eq(w_sticky),
            v_lo.eq(Mux(w_neg, (~w_lo) + ~w_sticky, w_lo)),
            v_hi.eq(Mux(w_neg, (~w_hi) + (~w_sticky & w_lo_zero), w_hi)),
            v_exp.eq(w_index * C + (self.lsb_exp - 254 - C)),
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

