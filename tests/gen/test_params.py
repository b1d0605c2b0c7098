"""The typed parameter parser and validation messages shared by every command."""

import pytest

from gen.cores.mx_quantize import MXQuantizeParams
from gen.params import ParamError, parse_assignments


def parse(*items):
    return parse_assignments(MXQuantizeParams, items)


def test_defaults():
    p = parse()
    assert (p.format, p.block_size, p.rounding, p.lanes) == ("mxfp8_e4m3", 32, "even", None)
    assert p.resolved()["lanes"] == 32


def test_values_are_typed():
    p = parse("format=mxfp4_e2m1", "block_size=16", "rounding=nearest", "lanes=4")
    assert (p.format, p.block_size, p.rounding, p.lanes) == ("mxfp4_e2m1", 16, "nearest", 4)


@pytest.mark.parametrize("items, message", [
    (["block_size=3"], r"^parameter block_size=3 is not allowed; allowed: 2, 4, 8, 16, 32, 64$"),
    (["block_size=many"], r"^parameter block_size must be an integer, not 'many'"),
    (["format=fp9"], r"^parameter format=fp9 is not allowed; allowed: mxfp8_e5m2, mxfp8_e4m3, "),
    (["rounding=up"], r"^parameter rounding=up is not allowed; allowed: even, nearest$"),
    (["lanes=5"], r"^parameter lanes=5 is not allowed with block_size=32; allowed: 1, 2, 4, 8, "
                  r"16, 32$"),
    (["lanes=64", "block_size=32"], r"lanes=64 is not allowed with block_size=32"),
    (["colour=red"], r"^unknown parameter 'colour'; parameters of this core: format, block_size, "
                     r"rounding, lanes$"),
    (["block_size"], r"^parameter assignment must look like KEY=VALUE, not 'block_size'$"),
    (["block_size=16", "block_size=8"], r"^parameter block_size given twice$"),
])
def test_bad_values_name_parameter_value_and_allowed(items, message):
    with pytest.raises(ParamError, match=message):
        parse(*items)


def test_direct_construction_is_validated_too():
    with pytest.raises(ParamError, match=r"block_size=3 is not allowed"):
        MXQuantizeParams(block_size=3)
    with pytest.raises(ParamError, match=r"block_size must be an integer, not True"):
        MXQuantizeParams(block_size=True)


def test_describe_lists_every_parameter():
    d = {p["name"]: p for p in MXQuantizeParams.describe()}
    assert d["block_size"]["type"] == "int" and d["block_size"]["default"] == 32
    assert d["block_size"]["allowed"] == [2, 4, 8, 16, 32, 64]
    assert d["format"]["type"] == "format" and "mxint8" in d["format"]["allowed"]
    assert "power of two" in d["lanes"]["allowed"]
