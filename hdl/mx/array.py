"""R x C output-stationary systolic array of MX block-dot processing elements: C = A . B."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.common import check_choice, is_int
from hdl.common.pipeline import delay
from hdl.common.stream_shell import RESULT_RAMS, extra_read_cycles, stream_shell
from hdl.formats import MX_FORMAT_SETS, MX_FORMATS, MXFormatSet

from .dot import DotDatapath, block_beats

__all__ = ["MXArray"]


class MXArray(wiring.Component):
    """An R x C array of processing elements computing a tile of ``C = A . B`` for MX matrices.

    Dataflow: output-stationary. PE (r, c) owns output ``C[r, c]`` of the tile and keeps its
    accumulator local; the narrow MX blocks move instead — A blocks enter at the left edge and
    travel right, B blocks enter at the top and travel down, one PE per cycle, skewed so that
    PE (r, c) sees ``A[r, k]`` and ``B[k, c]`` in the same cycle. Output-stationary because an MX
    output accumulates block sums at different scales: in a weight-stationary array the partial
    sums would travel between PEs, either as full-width exact accumulators (hundreds of bits per
    hop for ``accum="exact"``) or rounded at every hop (which changes the §11 result). Every PE is
    the :class:`DotDatapath` of ``mx-dot`` — same block product, adder tree and accumulator, same
    ``accum`` semantics — so each output is bit-identical to ``mx-dot`` on its row and column.

    One input beat is one step along K for the whole tile: the ``rows`` A blocks
    ``A[m0 + r, k]`` and the ``cols`` B blocks ``B[k, n0 + c]``, with ``last`` on the tile's final
    K block. The tile's ``rows * cols`` FP32 results leave as one output beat (row-major). Full
    rate: one beat per cycle, i.e. one block pair per PE per cycle.

    With ``lanes`` below ``block_size`` a K step takes ``block_size / lanes`` beats, each with
    ``lanes`` elements of every row's A block and every column's B block (and the blocks'
    scales), as for ``MXDot``: every PE has ``lanes`` multipliers, and takes one block pair every
    ``block_size / lanes`` cycles. With ``accum="exact"`` the PEs of a row then share exact
    accumulators, ``min(block_size / lanes, cols)`` PEs each: PE (r, c) finishes its blocks one
    cycle after PE (r, c - 1) and a K step takes at least ``block_size / lanes`` cycles, so the
    blocks of those PEs reach their accumulator one per cycle, always in column order, and an
    accumulator with one context per PE keeps their groups apart (:class:`ExactAccumulator`,
    ``contexts``). The wide pieces, candidate chain and rounder are most of a PE's logic and
    flip-flops; a block-sum register in front of each shared accumulator adds one cycle.

    Larger problems are tiled by the host: for each (m0, n0) tile it streams the K blocks of the
    A rows ``m0 .. m0 + rows - 1`` and B columns ``n0 .. n0 + cols - 1``; rows and columns past the
    matrix edge are padded with zero blocks (their results, +0.0, are dropped by the host).
    K is never truncated: every block the host sends is accumulated.

    Parameters
    ----------
    rows, cols : int
        Array shape, 1..16 each.
    a_format, b_format, block_size, accum, pipeline, multipliers, adders, muxes :
        As for ``MXDot``, per PE.
    fifo : {"generic", "ecp5-ebr"}
        The tile-result FIFO, as for ``MXDot``.
    lanes : int or None
        Element pairs per PE per beat, as for ``MXDot`` (default ``block_size``).

    Members
    -------
    i : In(stream.Signature(StructLayout(a_scale[rows], a_codes[rows * lanes],
        b_scale[cols], b_codes[cols * lanes], last)))
        Element ``r * lanes + j`` of ``a_codes`` is element j of the beat's part of row r's A
        block; likewise ``b_codes`` per column.
    o : Out(stream.Signature(StructLayout(result: ArrayLayout(32, rows * cols))))
    """

    def __init__(self, rows, cols, a_format, b_format, block_size=32, accum="exact",
                 pipeline="200mhz", multipliers="dsp", adders="generic", muxes="generic",
                 fifo="generic", lanes=None):
        for name, v in (("rows", rows), ("cols", cols)):
            if not (is_int(v) and 1 <= v <= 16):
                raise ValueError(f"{name} must be an integer in 1..16, not {v!r}")
        self.rows, self.cols = rows, cols
        for name, v in (("a_format", a_format), ("b_format", b_format)):
            if isinstance(v, MXFormatSet) or (isinstance(v, str) and v in MX_FORMAT_SETS):
                raise ValueError(f"{name}={getattr(v, 'name', v)}: format sets (formats chosen "
                                 f"per block) are an mx-dot feature; mx-array takes one of "
                                 f"{', '.join(MX_FORMATS)}")
        self.fifo = check_choice("fifo", fifo, RESULT_RAMS)
        # PEs of a row take turns on exact accumulators with several beats per block (a bad
        # lanes or block_size is DotDatapath's error, below).
        self.share = (accum == "exact" and cols > 1 and is_int(lanes) and is_int(block_size)
                      and lanes < block_size)
        self.pes = [[DotDatapath(a_format, b_format, block_size, accum, pipeline, multipliers,
                                 adders, muxes, lanes, accumulator=not self.share)
                     for _ in range(cols)] for _ in range(rows)]
        pe = self.pes[0][0]
        share = min(pe.beats, cols) if self.share else 1
        self.column_groups = [list(range(c, min(c + share, cols))) for c in range(0, cols, share)]
        self.accumulators = ([[pe.make_accumulator(len(g)) for g in self.column_groups]
                              for _ in range(rows)] if self.share else None)
        # A group's last beat at a PE's inputs to its result: with shared accumulators, the
        # PE's blocks, the register in front of the accumulator, the accumulator.
        self.pe_latency = (pe.block_latency + 1 + self.accumulators[0][0].latency
                           if self.share else pe.latency)
        self.lanes, self.beats = pe.lanes, pe.beats
        self.a_format, self.b_format = pe.a_format, pe.b_format
        self.block_size, self.accum, self.pipeline = block_size, accum, pipeline
        # PE (rows-1, cols-1) sees a tile's blocks rows+cols-2 cycles after PE (0, 0).
        self.skew = rows + cols - 2
        self.fifo_depth = self.skew + self.pe_latency + 4        # as for MXDot
        a_w, b_w = pe.a_format.element.width, pe.b_format.element.width
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "a_scale": data.ArrayLayout(8, rows),
                "a_codes": data.ArrayLayout(a_w, rows * self.lanes),
                "b_scale": data.ArrayLayout(8, cols),
                "b_codes": data.ArrayLayout(b_w, cols * self.lanes),
                "last": 1,
            }))),
            "o": Out(stream.Signature(data.StructLayout({
                "result": data.ArrayLayout(32, rows * cols)}))),
        })

    @property
    def latency(self):
        """Cycles from the handshake of a tile's last beat to its results on ``o`` (``o.ready``
        held high): input register, edge skew, PE datapath, FIFO, output register (with
        ``fifo="ecp5-ebr"`` the block RAM's address and output registers)."""
        return 1 + self.skew + self.pe_latency + 1 + 1 + extra_read_cycles(self.fifo)

    @property
    def details(self):
        pe = self.pes[0][0]
        shared = {}
        if self.share:
            shared = {"accumulators_per_row": len(self.column_groups),
                      "pes_per_accumulator": len(self.column_groups[0])}
        return {**pe.details_with(self.accumulators[0][0] if self.share else pe.accumulator),
                "pe_latency": self.pe_latency, **shared,
                "edge_skew": self.skew, "fifo": self.fifo,
                "result_fifo_depth": self.fifo_depth + extra_read_cycles(self.fifo),
                "dataflow": "output-stationary"}

    @property
    def throughput(self):
        if self.beats == 1:
            return (f"1 beat per cycle ({self.rows} A + {self.cols} B blocks, "
                    f"{self.rows * self.cols} block pairs); 1 result beat per tile")
        return (f"1 beat per cycle ({self.lanes} elements of {self.rows} A + {self.cols} B "
                f"blocks), {self.rows * self.cols} block pairs every {self.beats} cycles; 1 "
                f"result beat per tile")

    def elaborate(self, platform):
        m = Module()
        R, C = self.rows, self.cols
        a_bits = self.lanes * self.a_format.element.width
        b_bits = self.lanes * self.b_format.element.width
        done = Signal()
        results = Signal(32 * R * C)
        group_last, ends = block_beats(m, self.i, self.beats)
        valid, first, last, payload = stream_shell(
            m, self.i, self.o, result_valid=done, result=results, depth=self.fifo_depth,
            last=group_last, output_register=True, ram=self.fifo)
        control = Cat(valid, first, last, *ends)

        # Edge skew: row r's A blocks (with the control bits) wait r cycles, column c's B blocks
        # wait c cycles; then every PE passes A right and B down through one register.
        a_at = [[None] * C for _ in range(R)]
        b_at = [[None] * C for _ in range(R)]
        for r in range(R):
            a_codes = payload.a_codes.as_value()[r * a_bits:(r + 1) * a_bits]
            a_edge = Cat(payload.a_scale[r], a_codes, control)
            a_at[r][0] = delay(m, a_edge, r, f"a{r}_skew")
            for c in range(1, C):
                a_at[r][c] = delay(m, a_at[r][c - 1], 1, f"a{r}_{c}")
        for c in range(C):
            b_codes = payload.b_codes.as_value()[c * b_bits:(c + 1) * b_bits]
            b_edge = Cat(payload.b_scale[c], b_codes)
            b_at[0][c] = delay(m, b_edge, c, f"b{c}_skew")
            for r in range(1, R):
                b_at[r][c] = delay(m, b_at[r - 1][c], 1, f"b{r}_{c}")

        aligned = []
        for r in range(R):
            for c in range(C):
                pe = m.submodules[f"pe{r}_{c}"] = self.pes[r][c]
                a = a_at[r][c]
                m.d.comb += [
                    pe.a.eq(a[:len(pe.a)]),
                    pe.control.eq(a[len(pe.a):]),
                    pe.b.eq(b_at[r][c]),
                ]
                if not self.share:
                    # Every result waits until PE (R-1, C-1), the last one, has its own.
                    aligned.append(delay(m, pe.o, self.skew - r - c, f"pe{r}_{c}_o"))
        if not self.share:
            m.d.comb += [
                done.eq(self.pes[R - 1][C - 1].o_valid),
                results.eq(Cat(*aligned)),
            ]
            return m
        aligned = [[None] * C for _ in range(R)]
        for r in range(R):
            for g, columns in enumerate(self.column_groups):
                acc = m.submodules[f"acc{r}_{g}"] = self.accumulators[r][g]
                self._share(m, acc, [self.pes[r][c] for c in columns], f"acc{r}_{g}")
                # Column c's result leaves the accumulator c - columns[0] cycles after the
                # group's first; each waits on one delay line until PE (R-1, C-1) has its own.
                line = [acc.o]
                for _ in range(self.skew - r - columns[0]):
                    line.append(delay(m, line[-1], 1, f"acc{r}_{g}_o{len(line)}"))
                for c in columns:
                    aligned[r][c] = line[self.skew - r - c]
        last_pe = self.pes[R - 1][C - 1]
        m.d.comb += [
            done.eq(delay(m, last_pe.block_valid & last_pe.block_last,
                          1 + self.accumulators[R - 1][-1].latency, "done")),
            results.eq(Cat(*[aligned[r][c] for r in range(R) for c in range(C)])),
        ]
        return m

    @staticmethod
    def _share(m, acc, pes, name):
        """Feed ``acc`` the blocks of ``pes`` (one of them per cycle at most): the valid one's,
        through a register."""
        fields = ("first", "last", "sum", "scale_sum", "nan")
        regs = {f: Signal.like(getattr(acc, f), name=f"{name}_{f}") for f in fields}
        valid = Signal(name=f"{name}_valid")
        m.d.sync += valid.eq(Cat(pe.block_valid for pe in pes).any())
        for f, reg in regs.items():
            picks = [Mux(pe.block_valid, getattr(pe, f"block_{f}"), 0) for pe in pes]
            value = picks[0]
            for pick in picks[1:]:
                value = value | pick
            m.d.sync += reg.eq(value)
        m.d.comb += [acc.valid.eq(valid), *[getattr(acc, f).eq(regs[f]) for f in fields]]
