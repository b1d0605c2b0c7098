"""Weight-stationary systolic integer array, with or without OverQ lanes (ALGORITHMS.md §2.3).

One implementation serves both registry cores: ``int-array`` (``overq=False``, the baseline:
``b``-bit activation codes times signed weights) and ``overq-array`` (``overq=True``: fine
activations go through :class:`hdl.overq.encoder.OverQEncode` first, and every PE takes a 2-bit
tag). The difference is exactly the PE addition §2.3 names, so the two synthesize to a fair
comparison:

* the tag travels with the activation along the row;
* a static wire brings the stationary weight of the PE above, and a 2:1 mux picks it for every
  non-``NORMAL`` tag (row 0 never sees one: slot 0 of a tile is always ``NORMAL``);
* the product is shifted by ``{0, b, 2b}``, and the column sums are ``b`` (``2b`` with precision
  overwrite) bits wider.

Numerics are ``sim.golden.overq.array`` (``overq``) and ``x @ w`` (baseline), exactly.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.common import check_range, is_int, reduce_tree, wire
from hdl.common.pipeline import delay
from hdl.common.stream_shell import stream_shell

from .encoder import BITS, NORMAL, PREC, RANGE, OverQEncode

__all__ = ["ACTIVATION", "WEIGHT", "KINDS", "WEIGHT_BITS", "MAX_SIZE", "SystolicArray"]

#: Input beat kinds (the ``kind`` field of ``i.payload``).
ACTIVATION, WEIGHT = 0, 1
KINDS = ("activation", "weight")
#: Signed weight widths (equal to sim.golden.overq.WEIGHT_BITS).
WEIGHT_BITS = (2, 16)
#: Largest ``rows`` and ``cols``.
MAX_SIZE = 64


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value


class SystolicArray(wiring.Component):
    """A ``rows`` x ``cols`` weight-stationary array: ``y = x · W`` for one activation vector
    (one column tile of ``rows`` values) per cycle.

    Stream protocol (``i``):

    * ``kind = WEIGHT`` beats load the stationary weights, one row of ``cols`` signed
      ``weight_bits`` values (field ``w``) per beat, row 0 first. A run of weight beats starts at
      row 0 whenever a beat of another kind came in between, and wraps after ``rows`` beats. A
      weight beat waits (``i.ready`` low) until every activation vector taken before it has
      passed the whole array, so vectors always see the weights loaded before them and never
      the ones loaded after.
    * ``kind = ACTIVATION`` beats carry one vector (field ``x``, ``rows`` values): ``b``-bit codes
      (``overq=False``) or non-negative ``3b``-bit fine activations (``overq=True``), LSB
      ``= step / 2**b``.

    Output (``o``): one beat per activation vector, in order, field ``y``: ``cols`` signed sums,
    in code units x weight units (baseline) or in fine units (OverQ: ``sim.golden.overq.array``).

    Datapath: input register, the OverQ encoder (``overq``), the input skew (row ``r`` waits
    ``r`` cycles), then ``rows`` x ``cols`` PEs, each with three register stages (two partial-
    product halves, their shifted sum, the column add; the activation moves one PE right per
    cycle, the column sum one PE down), the
    output deskew (column ``c`` waits ``cols - 1 - c`` cycles) and a result FIFO whose credits
    are the only backpressure: the array itself never stalls. Products are built from ``b``
    shifted copies of the weight in LUT logic (no DSP blocks), so arrays beyond a device's
    multiplier count still fit and the PE comparison is like for like.
    """

    def __init__(self, *, rows, cols, bits, weight_bits, overq=False, cascade=1,
                 precision=False, slots_per_stage=None):
        check_range("rows", rows, 1, MAX_SIZE)
        check_range("cols", cols, 1, MAX_SIZE)
        check_range("bits", bits, *BITS)
        check_range("weight_bits", weight_bits, *WEIGHT_BITS)
        _check_bool("overq", overq)
        _check_bool("precision", precision)
        if overq:
            kw = {} if slots_per_stage is None else {"slots_per_stage": slots_per_stage}
            self.encoder = OverQEncode(rows=rows, bits=bits, cascade=cascade,
                                       precision=precision, **kw)
        else:
            if precision or not (is_int(cascade) and cascade == 1) or slots_per_stage is not None:
                raise ValueError("cascade, precision and slots_per_stage apply only with "
                                 "overq=true")
            self.encoder = None
        self.rows, self.cols, self.bits, self.weight_bits = rows, cols, bits, weight_bits
        self.overq, self.cascade, self.precision = overq, cascade, precision
        self.x_bits = 3 * bits if overq else bits
        # Tag shifts in accumulator units: the fine unit (step / 2**b) with precision overwrite,
        # the coarse step without (then every product is a multiple of 2**b, so one b is
        # dropped inside and appended at the output).
        self.shifts = ((bits, bits, 2 * bits, 0) if precision else (0, 0, bits, 0))
        self.out_shift = bits if overq and not precision else 0
        grow = (rows - 1).bit_length()
        # Largest activation multiplier: a b-bit code, or a decoded OverQ value < 2**(3b) fine
        # (2**(2b) coarse).
        act_bits = bits if not overq else (3 * bits if precision else 2 * bits)
        self.sum_bits = act_bits + weight_bits + grow
        self.out_bits = self.sum_bits + self.out_shift
        self.encoder_latency = self.encoder.latency if overq else 0
        self.fifo_depth = 1 + self.encoder_latency + rows + cols + 4
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "kind": 1,
                "x": data.ArrayLayout(self.x_bits, rows),
                "w": data.ArrayLayout(signed(weight_bits), cols),
            }))),
            "o": Out(stream.Signature(data.StructLayout({
                "y": data.ArrayLayout(signed(self.out_bits), cols)}))),
        })

    @property
    def datapath_latency(self):
        """Cycles from the registered input beat to the aligned column sums: encoder, ``rows``
        skew + PE rows, ``cols`` columns, and the two PE stages before the column add."""
        return self.encoder_latency + self.rows + self.cols + 1

    @property
    def latency(self):
        """Cycles from taking an activation beat to its ``y`` beat (``o.ready`` held high):
        input register, datapath, FIFO."""
        return 1 + self.datapath_latency + 1

    @property
    def drain_cycles(self):
        """Cycles a weight beat waits after the last activation beat was taken."""
        return self.datapath_latency

    @property
    def throughput(self):
        return (f"1 activation vector ({self.rows} values) per cycle, {self.rows * self.cols} "
                f"MACs per cycle; weight load: {self.rows} beats")

    @property
    def details(self):
        d = {"dataflow": "weight-stationary", "pes": self.rows * self.cols,
             "sum_bits": self.sum_bits, "out_bits": self.out_bits,
             "encoder_latency": self.encoder_latency, "result_fifo_depth": self.fifo_depth,
             "weight_drain_cycles": self.drain_cycles, "multipliers": "lut"}
        if self.overq:
            d["tag_shifts"] = dict(zip(("NORMAL", "SHIFTED", "RANGE", "PREC"), self.shifts))
            d["out_shift"] = self.out_shift
        return d

    def _partial_products(self, m, name, value, weight):
        """``value`` (unsigned ``b`` bits) x ``weight`` (signed) as two registered halves, each the
        sum of ``b/2`` shifted copies of the weight (plain LUT adders, never a DSP block); the
        product is ``lo + hi``. Splitting the adder tree over two register stages keeps the PE's
        longest path at one carry chain plus its routing."""
        def half(ks, tag):
            terms = [Mux(value[k], weight, 0) << k for k in ks]
            width = self.weight_bits + max(ks) + 1
            reg = Signal(signed(width), name=f"{name}_{tag}")
            m.d.sync += reg.eq(reduce_tree(lambda a, b: a + b, terms))
            return reg
        split = (len(value) + 1) // 2
        return half(range(split), "lo"), half(range(split, len(value)), "hi")

    def elaborate(self, platform):
        m = Module()
        R, C, b = self.rows, self.cols, self.bits
        is_act = self.i.payload.kind == ACTIVATION

        # Weight beats wait for the datapath to drain of earlier vectors: ``quiet`` counts down
        # from the last activation beat taken; ``drained`` is its zero flag, kept as a register
        # so ``i.ready`` does not wait for a compare.
        quiet = Signal(range(self.drain_cycles + 1), name="quiet")
        drained = Signal(init=1, name="drained")
        take = self.i.valid & self.i.ready
        quiet_next = wire(m, "quiet_next", Mux(take & is_act, self.drain_cycles,
                                               Mux(quiet != 0, quiet - 1, 0)))
        m.d.sync += [quiet.eq(quiet_next), drained.eq(quiet_next == 0)]

        result_valid = Signal()
        result = Signal(self.out_bits * C)
        valid, _first, _last, payload = stream_shell(
            m, self.i, self.o, result_valid=result_valid, result=result, depth=self.fifo_depth,
            last=is_act, accept=is_act | drained)
        act_valid = wire(m, "act_valid", valid & (payload.kind == ACTIVATION))

        # Stationary weights, written one row per weight beat. The row select is decoded when the
        # beat is taken and registered beside its payload, so each row's write enable is a
        # flip-flop (it fans out to cols x weight_bits enables).
        wrow = Signal(range(R), name="weight_row")
        row_sel = Signal(R, name="weight_row_select")
        m.d.sync += row_sel.eq(Mux(take & ~is_act, Const(1, R) << wrow, 0))
        with m.If(take):
            m.d.sync += wrow.eq(Mux(is_act | (wrow == R - 1), 0, wrow + 1))
        weights = [[Signal(signed(self.weight_bits), name=f"w{r}_{c}") for c in range(C)]
                   for r in range(R)]
        for r in range(R):
            with m.If(row_sel[r]):
                m.d.sync += [weights[r][c].eq(payload.w[c]) for c in range(C)]

        # Slot values and tags entering the rows (free-running: weight beats flow through as
        # don't-care vectors that never reach the output).
        if self.overq:
            m.submodules.encoder = enc = self.encoder
            m.d.comb += enc.x.eq(payload.x)
            slots = [Cat(enc.values[r], enc.tags[r]) for r in range(R)]
        else:
            slots = [payload.x[r] for r in range(R)]

        psum = [None] * C
        for r in range(R):
            # ``ahead`` is what the activation register of the next PE loads: the PE reads its
            # tag one cycle early to register its weight select.
            ahead = delay(m, slots[r], max(r - 1, 0), f"row{r}_skew")
            for c in range(C):
                a = delay(m, ahead, 1, f"a{r}_{c}") if (r or c) else ahead
                value = a[:b]
                # Stage 1: two partial-product halves; stage 2: their sum, shifted by the tag;
                # stage 3 (below): the column add. OverQ's weight select is registered beside
                # the activation, from the tag one PE to the left.
                prod = Signal(signed(self.sum_bits), name=f"p{r}_{c}")
                if self.overq and r > 0:
                    chosen = Signal(signed(self.weight_bits), name=f"wsel{r}_{c}")
                    m.d.sync += chosen.eq(Mux(ahead[b:b + 2] == NORMAL, weights[r][c],
                                              weights[r - 1][c]))
                    lo, hi = self._partial_products(m, f"pp{r}_{c}", value, chosen)
                    tag1 = delay(m, a[b:b + 2], 1, f"tag{r}_{c}")
                    raw = wire(m, f"raw{r}_{c}", lo + hi)
                    s = self.shifts
                    m.d.sync += prod.eq(Mux(tag1 == RANGE, raw << s[RANGE],
                                            Mux(tag1 == PREC, raw << s[PREC],
                                                raw << s[NORMAL])))
                else:
                    lo, hi = self._partial_products(m, f"pp{r}_{c}", value, weights[r][c])
                    m.d.sync += prod.eq((lo + hi) << (self.shifts[NORMAL] if self.overq else 0))
                ahead = a
                acc = Signal(signed(self.sum_bits), name=f"s{r}_{c}")
                m.d.sync += acc.eq(prod if r == 0 else psum[c] + prod)
                psum[c] = acc

        # Column c's sum leaves the last row at (rows + c + 2) cycles past the skew start; wait
        # until the last column's is there too.
        ys = [delay(m, psum[c], C - 1 - c, f"y{c}_deskew") for c in range(C)]
        m.d.comb += [
            result_valid.eq(delay(m, act_valid, self.datapath_latency, "result_valid")),
            result.eq(Cat(*[Cat(Const(0, self.out_shift), y) if self.out_shift else y
                            for y in ys])),
        ]
        return m
