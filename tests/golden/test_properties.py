"""Property-based checks of the golden quantizer (hypothesis): any float32 block, any format."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.golden import mx

from .reference import FORMATS, ref_quantize_block

blocks = st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=1,
                  max_size=16)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(values=blocks, fmt=st.sampled_from(FORMATS),
       rounding=st.sampled_from(["even", "nearest", "floor"]))
def test_quantize_equals_fraction_reference(values, fmt, rounding):
    x = np.array(values, dtype=np.float32)
    q = mx.quantize(x, fmt, block_size=16, rounding=rounding)
    scale, codes = ref_quantize_block(np.pad(x, (0, 16 - x.size)), fmt, rounding)
    assert int(q.scales[0]) == scale
    assert q.codes.tolist() == codes


@settings(max_examples=200, deadline=None, derandomize=True)
@given(values=blocks, fmt=st.sampled_from(FORMATS))
def test_requantizing_dequantized_values_is_the_identity(values, fmt):
    """Values already on the MX grid come back with the same codes (finite blocks)."""
    x = np.array(values, dtype=np.float32)
    q = mx.quantize(x, fmt, block_size=16)
    if q.scales[0] == 255:
        return
    again = mx.quantize(mx.dequantize(q), fmt, block_size=16)
    back = mx.dequantize(again)
    np.testing.assert_array_equal(back.view(np.uint32) & 0x7FFFFFFF,
                                  mx.dequantize(q).view(np.uint32) & 0x7FFFFFFF)
