"""Exact (Kulisch) accumulation of MX block sums across a group, one RNE rounding to FP32 at the end
(MX_SPEC §11, dot across blocks, mode ``exact``)."""

import operator

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed

from hdl.common import is_int, reduce_tree
from hdl.common.fp32 import RoundToFP32
from hdl.common.pipeline import delay

from .block_accumulator import BlockAccumulator
from .dequantize import QNAN as FP32_QNAN

__all__ = ["ExactAccumulator"]

#: Span of ``s_a + s_b`` in scale codes: 0 .. 254 + 254.
SCALE_SUM_MAX = 508
#: Guard bits at least reserved above the largest block term for the group-length capacity.
MIN_GUARD = 16
#: Pieces per first-level group of the window mux.
GROUP = 4
#: Copies of the one-hot piece choice (fan-out relief; two for the high piece, two for the low).
SELECT_COPIES = 4


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
    the pieces of a group's sum are final one after another, and they travel on to the rounding
    stage, which finds the most significant piece, takes two pieces and a sticky bit, and rounds
    them with :class:`RoundToFP32`. Any number of groups are in flight; one block per cycle.

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
        # entry register, one stage per piece, the piece capture, five rounding-stage
        # registers, the rounder, and the output register.
        return 1 + self.chunks + 1 + 5 + self.rounder.latency + 1

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

        s0 = stage_fields(0)
        shifted = (self.sum.as_signed() << self.scale_sum[:shift_bits]).as_signed()
        m.d.sync += [
            s0["valid"].eq(self.valid), s0["last"].eq(self.last),
            s0["bad"].eq(bad_now),
            s0["q"].eq(self.scale_sum[shift_bits:]),
            s0["window"].eq(shifted),          # sign-extends to J pieces
            s0["neg"].eq(self.sum < 0),
        ]

        # Delay line: stage k holds the block piece k works on next cycle.
        stages = [s0]
        for k in range(1, N + 2):
            prev, cur = stages[-1], stage_fields(k)
            keep = ("valid", "last", "bad") if k > N - 1 else tuple(cur)
            for key in keep:
                m.d.sync += cur[key].eq(prev[key])
            stages.append(cur)

        carry = Const(0)
        captured = []                   # pieces 0..k of the block at stages[k + 2]
        # Flags of the finished pieces, computed next to where each piece was captured (from the
        # newest piece of the previous capture register) and travelling with them: bit 2j is
        # "piece j != 0", bit 2j+1 "piece j != all ones". flags[k] covers pieces 0..k and is
        # aligned with captured[k + 1].
        flags = []
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
            piece = Signal(C * (k + 1), name=f"pieces{k + 1}", reset_less=True)
            m.d.sync += piece.eq(Cat(*captured[-1:], total[:C]) if captured else total[:C])
            if k >= 1:
                newest = captured[-1][(k - 1) * C:k * C]          # piece k-1, one cycle old
                flag = Signal(2 * k, name=f"flags{k}", reset_less=True)
                m.d.sync += flag.eq(Cat(*flags[-1:], newest != 0, newest != (1 << C) - 1))
                flags.append(flag)
            captured.append(piece)
            carry = next_carry

        # Rounding stage 1: which piece leads (positive: nonzero; negative: not all ones).
        done = stages[N + 1]
        pieces = [captured[-1][k * C:(k + 1) * C] for k in range(N)]
        # The travelling flags cover pieces 0..N-2 (flags[-1] is aligned with captured[-1]);
        # the top piece's flags are computed here.
        nz = [flags[-1][2 * j] for j in range(N - 1)] + [pieces[-1] != 0] if flags else \
            [p != 0 for p in pieces]
        noa = [flags[-1][2 * j + 1] for j in range(N - 1)] + [pieces[-1] != (1 << C) - 1] \
            if flags else [p != (1 << C) - 1 for p in pieces]
        z_valid, z_bad = Signal(), Signal()
        z_pieces = Signal(N * C, reset_less=True)
        z_neg = Signal()
        z_lead = Signal(N)
        z_nonzero = Signal(N)
        neg = pieces[-1][C - 1]
        m.d.sync += [
            z_valid.eq(done["valid"] & done["last"]),
            z_bad.eq(done["bad"]),
            z_pieces.eq(captured[-1]),
            z_neg.eq(neg),
            z_lead.eq(Cat(Mux(neg, a, b) for a, b in zip(noa, nz))),
            z_nonzero.eq(Cat(*nz)),
        ]

        # Rounding stage 2: the one-hot choice of the leading piece (piece 0 if none) and the
        # sticky of everything under the piece below it. Registered: the priority logic fans out
        # to every bit of the window mux.
        select = []
        for k in range(N):
            higher = z_lead[k + 1:] if k + 1 < N else Const(0)
            select.append((z_lead[k] | (k == 0)) & ~higher.any())
        below = [Const(0)]              # below[k]: any nonzero piece under piece k
        for k in range(1, N):
            below.append(z_nonzero[:k].any())
        s_valid, s_bad, s_neg, s_sticky = Signal(), Signal(), Signal(), Signal()
        # The choice drives every bit of two pieces: four kept copies (each feeds a quarter of
        # the window bits) cut the fan-out that otherwise dominates this stage's routing delay.
        s_select = [Signal(N, name=f"s_select{c}", attrs={"keep": 1}) for c in range(SELECT_COPIES)]
        s_pieces = Signal(N * C, reset_less=True)
        m.d.sync += [
            s_valid.eq(z_valid), s_bad.eq(z_bad), s_neg.eq(z_neg),
            *[copy.eq(Cat(*select)) for copy in s_select],
            s_sticky.eq(_or_all([select[k] & below[k - 1] for k in range(2, N)] or [Const(0)])),
            s_pieces.eq(z_pieces),
        ]

        # Rounding stages 3 and 4: the two-piece window, muxed in two registered levels (groups
        # of GROUP pieces, then across groups) so each level is an AND-OR of a few terms.
        sp = [s_pieces[k * C:(k + 1) * C] for k in range(N)]
        groups = [range(g, min(g + GROUP, N)) for g in range(0, N, GROUP)]
        g_valid, g_bad, g_neg, g_sticky = Signal(), Signal(), Signal(), Signal()
        g_hi = [Signal(C, name=f"g{j}_hi", reset_less=True) for j in range(len(groups))]
        g_lo = [Signal(C, name=f"g{j}_lo", reset_less=True) for j in range(len(groups))]
        g_index = [Signal(range(N), name=f"g{j}_index", reset_less=True)
                   for j in range(len(groups))]
        m.d.sync += [g_valid.eq(s_valid), g_bad.eq(s_bad), g_neg.eq(s_neg),
                     g_sticky.eq(s_sticky)]
        for j, ks in enumerate(groups):
            m.d.sync += [
                g_hi[j].eq(_spread_mux(s_select[:2], sp, ks, 0, C)),
                g_lo[j].eq(_spread_mux(s_select[2:], sp, ks, -1, C)),
                g_index[j].eq(_or_all([Mux(s_select[0][k], k, 0) for k in ks])),
            ]
        w_valid, w_bad, w_neg, w_sticky = Signal(), Signal(), Signal(), Signal()
        w_hi, w_lo = Signal(C), Signal(C)
        w_index = Signal(range(N))
        m.d.sync += [
            w_valid.eq(g_valid), w_bad.eq(g_bad), w_neg.eq(g_neg), w_sticky.eq(g_sticky),
            w_hi.eq(_or_all(g_hi)), w_lo.eq(_or_all(g_lo)), w_index.eq(_or_all(g_index)),
        ]

        # Rounding stage 5: |x| of a negative sum is ~x + 1, whose +1 reaches the window only if
        # everything below it is zero. Registered: this 65-bit carry chain is a stage of its own.
        window = Cat(w_lo, w_hi)
        v_valid, v_bad, v_neg, v_sticky = Signal(), Signal(), Signal(), Signal()
        v_mag = Signal(2 * C + 1)
        v_exp = Signal(signed(11))
        # Bit 0 of the window (piece index-1) weighs 2**((index - 1) * C + lsb_exp - 254).
        m.d.sync += [
            v_valid.eq(w_valid), v_bad.eq(w_bad), v_neg.eq(w_neg), v_sticky.eq(w_sticky),
            v_mag.eq(Mux(w_neg, (~window) + ~w_sticky, window)),
            v_exp.eq(w_index * C + (self.lsb_exp - 254 - C)),
        ]
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


def _spread_mux(copies, pieces, ks, offset, width):
    """One-hot AND-OR of ``pieces[k + offset]`` over ``k in ks``; bit slice i of the result uses
    select copy i (so each copy drives ``width / len(copies)`` bits of each piece)."""
    part = width // len(copies)
    out = []
    for i, sel in enumerate(copies):
        lo, hi = i * part, (width if i == len(copies) - 1 else (i + 1) * part)
        terms = [Mux(sel[k], pieces[k + offset][lo:hi], 0) for k in ks if k + offset >= 0]
        out.append(_or_all(terms) if terms else Const(0, hi - lo))
    return Cat(*out)


def _or_all(values):
    return reduce_tree(operator.or_, values)
