"""mx-dot format sets: parameters, constructor errors, the vector checks and the emitted
interface (the co-simulation is in tests/cores/test_mx_dot_format_sets_cosim.py)."""

import numpy as np
import pytest

from gen.emit import emit
from gen.params import ParamError, parse_assignments
from gen.registry import VectorError, get_core
from hdl.formats import MX_FORMAT_SETS
from hdl.mx.array import MXArray
from hdl.mx.block_dot import BlockDotProduct
from hdl.mx.dot import MXDot
from sim.vectors.mx_dot_sets import selected_dot_groups

DOT = get_core("mx-dot")


def params(*assignments):
    return parse_assignments(DOT.params, list(assignments))


def test_a_set_goes_on_both_operands():
    with pytest.raises(ParamError, match="parameter a_format=mxfp8 needs the same set on the "
                                         "other operand"):
        params("a_format=mxfp8", "b_format=mxfp8_e4m3")
    with pytest.raises(ParamError, match="parameter a_format=mxfp8 needs the same set"):
        params("a_format=mxfp8", "b_format=mxfp6")
    with pytest.raises(ParamError, match="parameter b_format=mxall needs the same set"):
        params("a_format=mxint8", "b_format=mxall")
    with pytest.raises(ValueError, match="a_format=mxfp8 with b_format=mxint8: a format set "
                                         "must be both operands'"):
        MXDot("mxfp8", "mxint8")


def test_unknown_format_lists_formats_and_sets():
    with pytest.raises(ParamError, match="a_format=mxfp9 is not allowed; allowed: .*mxint8, "
                                         "mxfp8, mxfp6, mxall"):
        params("a_format=mxfp9")


def test_dsp_fp_multipliers_are_refused_with_a_set():
    with pytest.raises(ParamError, match="multipliers=ecp5-dsp-fp is not available with "
                                         "a_format=mxfp6"):
        params("a_format=mxfp6", "b_format=mxfp6", "multipliers=ecp5-dsp-fp")
    elem = MX_FORMAT_SETS["mxfp6"].element
    with pytest.raises(ValueError, match="multipliers='ecp5-dsp-fp' is not available with a "
                                         "format set"):
        BlockDotProduct(elem, elem, 8, tree_stages=0, multipliers="ecp5-dsp-fp")


def test_mx_array_takes_single_formats():
    with pytest.raises(ParamError, match="a_format=mxfp8 is not allowed"):
        parse_assignments(get_core("mx-array").params, ["a_format=mxfp8"])
    with pytest.raises(ValueError, match="a_format=mxall: format sets .* are an mx-dot feature"):
        MXArray(2, 2, "mxall", "mxall")


@pytest.mark.parametrize("name, sel_bits, width", [("mxfp8", 1, 8), ("mxfp6", 1, 6),
                                                   ("mxall", 3, 8)])
def test_interface_carries_the_indices(name, sel_bits, width):
    """The manifest's input stream has a slot of the widest member per element and the two
    per-block format indices; the formats listed are the set's members."""
    p = params(f"a_format={name}", f"b_format={name}", "block_size=8")
    manifest = emit(DOT, p).manifest
    fields = {f["name"]: f for f in manifest["ports"]["i"]["payload"]["fields"]}
    assert fields["a_sel"]["width"] == fields["b_sel"]["width"] == sel_bits
    assert fields["a_codes"]["width"] == fields["b_codes"]["width"] == width
    assert fields["a_codes"]["count"] == 8
    assert manifest["top"] == f"mx_dot_{name}_b8_exact_200mhz"
    assert manifest["formats"] == sorted(f.name for f in MX_FORMAT_SETS[name].members) + ["e8m0"]


def _vectors(name="mxall"):
    return selected_dot_groups(np.random.default_rng(2), name, 20, 2, 8)


@pytest.mark.parametrize("change, message", [
    (lambda v: v.pop("a_sel"), "a_sel"),
    (lambda v: v.__setitem__("b_sel", v["b_sel"][:, :1]), "array 'b_sel' must have the shape"),
    (lambda v: v["a_sel"].__setitem__((0, 0), 6),
     "array 'a_sel' holds 6; mxall has formats 0..5: 0 = mxfp8_e5m2"),
    (lambda v: (v["b_sel"].__setitem__((0, 0), 4), v["b_codes"].__setitem__((0, 0, 3), 0x1F)),
     r"array 'b_codes' holds 31 in a block of mxfp4_e2m1 \(b_sel 4\): not a fp4_e2m1 code "
     r"\(0..15\)"),
])
def test_vector_errors(change, message):
    v = _vectors()
    bad = (v["a_sel"] >= 6) | (v["b_sel"] >= 6)
    for key in ("a_sel", "b_sel"):
        v[key][bad] = 0
    v = {k: a.copy() for k, a in v.items()}
    # Codes that fit every member (0..15 fit FP4 too) so only the change is wrong.
    for key in ("a_codes", "b_codes"):
        v[key] &= 0x7
    change(v)
    p = params("a_format=mxall", "b_format=mxall", "block_size=8")
    with pytest.raises(VectorError, match=message):
        DOT.check_vectors(p, v)


def test_valid_vectors_pass_the_check():
    v = _vectors("mxfp6")
    p = params("a_format=mxfp6", "b_format=mxfp6", "block_size=8")
    out = DOT.check_vectors(p, v)
    assert set(out) == {"a_scales", "b_scales", "a_codes", "b_codes", "a_sel", "b_sel"}
