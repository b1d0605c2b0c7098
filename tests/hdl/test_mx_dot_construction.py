"""mx-dot / mx-array generators: widths, register placement and parameter errors (no simulation)."""

import gc
import itertools
import warnings

import pytest
from amaranth._unused import UnusedMustUse

from gen.params import ParamError, parse_assignments
from gen.registry import get_core
from hdl.formats import MX_FORMATS, mx_format
from hdl.mx.array import MXArray
from hdl.mx.block_dot import BlockDotProduct, block_sum_width, tree_levels
from hdl.mx.dot import MXDot, resolve_pipeline
from hdl.mx.exact_accumulator import ExactAccumulator

# These tests build components only to inspect them; Amaranth warns about each one not elaborated
# (when it is garbage collected, so also after this module's last test: collect here, quietly).
pytestmark = pytest.mark.filterwarnings("ignore::amaranth._unused.UnusedMustUse")


@pytest.fixture(autouse=True, scope="module")
def _collect_unused_components():
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedMustUse)
        gc.collect()

#: MX_SPEC §6: exact width (two's complement) of a sum of 32 products, rows A, columns B.
SPEC_WIDTHS = {
    "mxfp8_e5m2": [70, 56, 47, 44, 42, 45],
    "mxfp8_e4m3": [56, 42, 33, 30, 28, 31],
    "mxfp6_e3m2": [47, 33, 24, 21, 19, 22],
    "mxfp6_e2m3": [44, 30, 21, 18, 16, 19],
    "mxfp4_e2m1": [42, 28, 19, 16, 14, 17],
    "mxint8": [45, 31, 22, 19, 17, 20],
}
ORDER = ["mxfp8_e5m2", "mxfp8_e4m3", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4_e2m1", "mxint8"]


@pytest.mark.parametrize("a, b", list(itertools.product(ORDER, ORDER)))
def test_block_sum_width_is_the_spec_table(a, b):
    width = block_sum_width(mx_format(a).element, mx_format(b).element, 32)
    spec = SPEC_WIDTHS[a][ORDER.index(b)]
    if a == b == "mxint8":
        # Decoders accept 0x80 (-2.0): (-128) * (-128) * 32 = 2**19 needs one bit more.
        assert width == spec + 1 == 21
    else:
        assert width == spec


def test_pipeline_resolution():
    levels = tree_levels(32)
    assert levels == 6
    assert resolve_pipeline(0, 32) == (0, 2, 1)
    assert resolve_pipeline(4, 32) == (4, 2, 1)
    assert resolve_pipeline("3", 32) == (3, 2, 1)
    assert resolve_pipeline("200mhz", 32) == (levels, 6, 2)
    assert resolve_pipeline("150 MHz", 32) == (3, 3, 1)
    assert resolve_pipeline("50mhz", 32) == (0, 1, 1)


@pytest.mark.parametrize("value, match", [
    (7, r"pipeline must be a stage count in 0\.\.6 \(block_size 32\)"),
    ("fast", r"pipeline must be a stage count in 0\.\.6 or a frequency"),
    ("0mhz", r"'<1\.\.1000>mhz'"),
    (-1, r"stage count in 0\.\.6"),
])
def test_pipeline_errors(value, match):
    with pytest.raises(ValueError, match=match):
        resolve_pipeline(value, 32)


def test_constructor_errors_name_the_parameter():
    with pytest.raises(ValueError, match="a_format must be one of .*; not 'fp8'"):
        MXDot("fp8", "mxint8")
    with pytest.raises(ValueError, match="block_size must be a power of two in 2..64, not 48"):
        MXDot("mxint8", "mxint8", block_size=48)
    with pytest.raises(ValueError, match="accum must be one of 'exact', 'fp32'; not 'bf16'"):
        MXDot("mxint8", "mxint8", accum="bf16")
    with pytest.raises(ValueError,
                       match="multipliers must be one of 'dsp', 'lut', 'ecp5-dsp', "
                             "'ecp5-dsp-fp', not 'auto'"):
        MXDot("mxint8", "mxint8", multipliers="auto")
    with pytest.raises(ValueError,
                       match="adders must be one of 'generic', 'ecp5-ccu2c'; not 'ecp5'"):
        MXDot("mxint8", "mxint8", adders="ecp5")
    with pytest.raises(ValueError, match="rows must be an integer in 1..16, not 0"):
        MXArray(0, 2, "mxint8", "mxint8")
    e = mx_format("mxint8").element
    with pytest.raises(ValueError, match="tree_stages must be an integer in 0..6"):
        BlockDotProduct(e, e, 32, tree_stages=9)


def test_cli_parameter_errors():
    core = get_core("mx-dot")
    with pytest.raises(ParamError, match="parameter pipeline must be a stage count in 0..6 or a "
                                         "frequency"):
        parse_assignments(core.params, ["pipeline=quick"])
    with pytest.raises(ParamError, match="parameter accum=bf16 is not allowed; allowed: exact, "
                                         "fp32"):
        parse_assignments(core.params, ["accum=bf16"])
    arr = get_core("mx-array")
    with pytest.raises(ParamError, match="parameter rows=17 is not allowed"):
        parse_assignments(arr.params, ["rows=17"])


@pytest.mark.parametrize("a, b", list(itertools.product(MX_FORMATS, MX_FORMATS)))
def test_exact_accumulator_covers_every_scale(a, b):
    """Every block term (sum < 2**(W-1), shifted by up to 508) fits with >= 16 guard bits."""
    d = MXDot(a, b)
    acc = d.datapath.accumulator
    assert isinstance(acc, ExactAccumulator)
    assert acc.width >= d.sum_width + 508 + 16
    assert acc.max_blocks >= 1 << 16
    assert d.datapath.details["max_group_blocks"] == acc.max_blocks


def test_latency_follows_the_register_placement():
    fast = MXDot("mxfp4_e2m1", "mxfp4_e2m1", pipeline="200mhz")
    slow = MXDot("mxfp4_e2m1", "mxfp4_e2m1", pipeline=0)
    # tree stages + 4 more rounding stages + the second product stage
    assert fast.latency - slow.latency == tree_levels(32) + 4 + 1
    arr = MXArray(3, 5, "mxfp4_e2m1", "mxfp4_e2m1")
    assert arr.latency == fast.latency + 3 + 5 - 2                 # + the edge skew


#: Product-stage registers at 200mhz: 2, +1 after the decode (an INT8 operand in logic, a 4-bit
#: significand or a 5-bit exponent), +1 inside an alignment shift of 16+ positions (E4M3, E5M2),
#: +1 inside a significand product of 4 x 4 bits or more (E4M3, E2M3, INT8 x those).
PRODUCT_STAGES_200MHZ = {
    ("mxfp4_e2m1", "mxfp4_e2m1"): 2, ("mxfp6_e3m2", "mxfp4_e2m1"): 2,
    ("mxfp6_e3m2", "mxfp6_e3m2"): 2, ("mxfp6_e2m3", "mxfp4_e2m1"): 3,
    ("mxint8", "mxfp4_e2m1"): 3, ("mxint8", "mxfp8_e4m3"): 4, ("mxint8", "mxfp6_e2m3"): 4,
    ("mxfp8_e4m3", "mxfp4_e2m1"): 4,
    ("mxfp8_e4m3", "mxfp8_e4m3"): 5, ("mxfp6_e2m3", "mxfp6_e2m3"): 4,
    ("mxfp8_e4m3", "mxfp6_e2m3"): 5, ("mxfp8_e5m2", "mxfp4_e2m1"): 4,
    ("mxfp8_e5m2", "mxint8"): 4, ("mxint8", "mxint8"): 2,
}


@pytest.mark.parametrize("a, b", list(PRODUCT_STAGES_200MHZ))
def test_product_stages_at_200mhz(a, b):
    for x, y in ((a, b), (b, a)):
        dot = MXDot(x, y, pipeline="200mhz").datapath.block_dot
        assert dot.product_stages == PRODUCT_STAGES_200MHZ[(a, b)], (x, y)
        assert MXDot(x, y, pipeline=0).datapath.block_dot.product_stages == 1


def test_int8_products_in_logic_get_the_decode_and_split_registers():
    """With DSPs (inferred) INT8 x INT8 has 2 product stages; in logic |code| is registered, and
    so is the first level of the 8 x 8 partial-product sum."""
    assert BlockDotProduct(mx_format("mxint8").element, mx_format("mxint8").element, 32,
                           tree_stages=0, multipliers="lut", product_stages=2).product_stages == 4


def test_dsp_fp_multipliers_put_narrow_magnitudes_into_mult18x18d():
    """ecp5-dsp-fp: a MULT18X18D per lane for FP pairs whose magnitudes fit 17 bits; the DSP's 2
    stages, +1 for the decoded magnitudes at 200 MHz, +1 after the DSP (at 200 MHz, or for the
    leaf XOR with generic adders at any placement)."""
    def stages(a, b, **kw):
        return MXDot(a, b, multipliers="ecp5-dsp-fp", **kw).datapath.block_dot.product_stages
    assert stages("mxfp6_e2m3", "mxfp6_e2m3") == 4
    assert stages("mxfp6_e2m3", "mxfp6_e2m3", adders="ecp5-ccu2c") == 4
    assert stages("mxfp6_e2m3", "mxfp6_e2m3", adders="ecp5-ccu2c", pipeline=0) == 2
    assert stages("mxint8", "mxfp4_e2m1", pipeline=0) == 3
    assert stages("mxint8", "mxint8") == 3                      # as ecp5-dsp
    assert stages("mxint8", "mxint8", pipeline=0) == 2
    dot = MXDot("mxfp6_e3m2", "mxint8", multipliers="ecp5-dsp-fp").datapath.block_dot
    assert dot.dsp_magnitudes and not dot.dsp_products
    with pytest.raises(ValueError, match="multipliers='ecp5-dsp-fp' needs element magnitudes of "
                                         "at most 17 bits .*; b_elem fp8_e4m3 has 18: use "
                                         "multipliers='ecp5-dsp'"):
        MXDot("mxfp6_e2m3", "mxfp8_e4m3", multipliers="ecp5-dsp-fp")
    core = get_core("mx-dot")
    with pytest.raises(ParamError, match="parameter multipliers=ecp5-dsp-fp is not allowed with "
                                         "a_format=mxfp8_e5m2: its element magnitudes need 32 "
                                         "bits, a MULT18X18D operand takes 17; formats that "
                                         "fit: mxfp6_e3m2, mxfp6_e2m3, mxfp4_e2m1, mxint8"):
        parse_assignments(core.params, ["a_format=mxfp8_e5m2", "multipliers=ecp5-dsp-fp"])


def test_ecp5_pfumx_chain_is_for_the_exact_accumulator():
    """muxes=ecp5-pfumx: three pieces per candidate-chain stage, one cycle more latency; with
    accum=fp32 (no candidate chain) it is refused by the constructor and the CLI, never
    ignored."""
    plain = MXDot("mxfp4_e2m1", "mxfp4_e2m1", adders="ecp5-ccu2c")
    grouped = MXDot("mxfp4_e2m1", "mxfp4_e2m1", adders="ecp5-ccu2c", muxes="ecp5-pfumx")
    assert grouped.latency == plain.latency + 1
    assert grouped.details["muxes"] == "ecp5-pfumx" and plain.details["muxes"] == "generic"
    with pytest.raises(ValueError, match="muxes='ecp5-pfumx' builds the exact accumulator's "
                                         "candidate chain; with accum='fp32' there is none"):
        MXDot("mxfp4_e2m1", "mxfp4_e2m1", accum="fp32", muxes="ecp5-pfumx")
    with pytest.raises(ValueError, match="muxes must be one of 'generic', 'ecp5-pfumx'"):
        MXDot("mxfp4_e2m1", "mxfp4_e2m1", muxes="pfumx")
    core = get_core("mx-dot")
    with pytest.raises(ParamError, match="parameter muxes=ecp5-pfumx builds the exact "
                                         "accumulator's candidate chain; with accum=fp32 there "
                                         "is none: use muxes=generic"):
        parse_assignments(core.params, ["accum=fp32", "muxes=ecp5-pfumx"])


def test_ecp5_ebr_fifo_takes_one_cycle_and_one_entry_more():
    """fifo=ecp5-ebr: the block RAM's read is one register more than the LUT-RAM FIFO's output
    register, so one cycle more latency and one entry more (for mx-dot and mx-array); a bad
    choice is one clear error in the constructor and the CLI."""
    plain = MXDot("mxfp4_e2m1", "mxfp4_e2m1")
    ebr = MXDot("mxfp4_e2m1", "mxfp4_e2m1", fifo="ecp5-ebr")
    assert ebr.latency == plain.latency + 1
    assert ebr.details["fifo"] == "ecp5-ebr" and plain.details["fifo"] == "generic"
    assert ebr.details["result_fifo_depth"] == plain.details["result_fifo_depth"] + 1
    a_plain = MXArray(2, 3, "mxint8", "mxfp4_e2m1")
    a_ebr = MXArray(2, 3, "mxint8", "mxfp4_e2m1", fifo="ecp5-ebr")
    assert a_ebr.latency == a_plain.latency + 1
    assert a_ebr.details["fifo"] == "ecp5-ebr"
    with pytest.raises(ValueError, match="fifo must be one of 'generic', 'ecp5-ebr'"):
        MXDot("mxfp4_e2m1", "mxfp4_e2m1", fifo="ebr")
    with pytest.raises(ParamError, match="fifo"):
        parse_assignments(get_core("mx-dot").params, ["fifo=bram"])


def test_lanes_shrink_the_tree_not_the_block():
    """lanes=8 at block 32: 8 products and a 3-level tree per beat, a block-sum register of the
    block's full §6 width (one cycle), 4 beats per block pair; the ports carry 8 codes. The
    default is block_size, and its module name and ports are those of a block per beat."""
    full = MXDot("mxint8", "mxint8", multipliers="ecp5-dsp")
    narrow = MXDot("mxint8", "mxint8", multipliers="ecp5-dsp", lanes=8)
    assert (narrow.lanes, narrow.beats, full.lanes, full.beats) == (8, 4, 32, 1)
    assert narrow.sum_width == full.sum_width == block_sum_width(
        mx_format("mxint8").element, mx_format("mxint8").element, 32)
    assert narrow.datapath.block_dot.block_size == 8
    assert narrow.datapath.block_dot.tree_stages == tree_levels(8)
    assert narrow.latency == full.latency - (tree_levels(32) - tree_levels(8)) + 1
    assert len(narrow.i.payload.a_codes) == 8 and len(full.i.payload.a_codes) == 32
    assert narrow.details["lanes"] == 8 and narrow.details["beats_per_block"] == 4
    assert "every 4 cycles" in narrow.throughput
    arr = MXArray(2, 3, "mxint8", "mxfp4_e2m1", lanes=4)
    assert len(arr.i.payload.a_codes) == 2 * 4 and len(arr.i.payload.b_codes) == 3 * 4
    assert arr.details["lanes"] == 4
    core = get_core("mx-dot")
    assert core.top_name(parse_assignments(core.params, ["lanes=8"])).endswith(
        "_b32_l8_exact_200mhz")
    assert core.top_name(parse_assignments(core.params, ["lanes=32"])) == core.top_name(
        parse_assignments(core.params, []))


def test_array_rows_share_exact_accumulators_with_lanes():
    """With several beats per block and accum=exact, min(beats, cols) PEs of a row take turns on
    one exact accumulator (one context each); a register in front of it costs one cycle."""
    arr = MXArray(4, 4, "mxint8", "mxint8", lanes=8, multipliers="ecp5-dsp")
    assert arr.share and arr.column_groups == [[0, 1, 2, 3]]
    assert [[acc.contexts for acc in row] for row in arr.accumulators] == [[4]] * 4
    pe = arr.pes[0][0]
    assert pe.accumulator is None
    assert arr.pe_latency == pe.block_latency + 1 + arr.accumulators[0][0].latency
    assert MXDot("mxint8", "mxint8", lanes=8, multipliers="ecp5-dsp").datapath.latency + 1 \
        == arr.pe_latency
    assert arr.details["pes_per_accumulator"] == 4 and arr.details["accumulators_per_row"] == 1
    assert arr.details["accumulator_pieces"] == MXDot("mxint8", "mxint8").details[
        "accumulator_pieces"]
    uneven = MXArray(3, 5, "mxfp6_e3m2", "mxfp4_e2m1", block_size=16, lanes=4)
    assert uneven.column_groups == [[0, 1, 2, 3], [4]]
    assert MXArray(2, 4, "mxfp4_e2m1", "mxfp4_e2m1", lanes=16).column_groups == [[0, 1], [2, 3]]
    # One accumulator per PE: full rate, FP32 accumulation, a single column.
    for kw in ({}, {"lanes": 8, "accum": "fp32"}, {"lanes": 8, "cols": 1}):
        kw = {"cols": 2, **kw}
        a = MXArray(2, kw.pop("cols"), "mxint8", "mxint8", **kw)
        assert not a.share and a.accumulators is None and a.pe_latency == a.pes[0][0].latency


def test_lanes_errors():
    with pytest.raises(ValueError, match="lanes must be a power of two in 2..32, not 3"):
        MXDot("mxint8", "mxint8", lanes=3)
    with pytest.raises(ValueError, match="lanes must be a power of two in 2..8, not 16"):
        MXArray(2, 2, "mxint8", "mxint8", block_size=8, lanes=16)
    for core in (get_core("mx-dot"), get_core("mx-array")):
        with pytest.raises(ParamError, match="parameter lanes=1 is not allowed with "
                                             "block_size=32; allowed: 2, 4, 8, 16, 32"):
            parse_assignments(core.params, ["lanes=1"])
        with pytest.raises(ParamError, match="parameter pipeline must be a stage count in 0..4"):
            parse_assignments(core.params, ["lanes=8", "pipeline=5"])
