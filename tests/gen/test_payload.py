"""numpy beat packing agrees with Amaranth's own layout packing."""

import numpy as np
from amaranth import signed
from amaranth.lib import data

from gen.payload import describe_layout, pack_beats, unpack_beats

LAYOUT = data.StructLayout({"scale": 8, "codes": data.ArrayLayout(6, 5), "flag": 1,
                            "s": data.ArrayLayout(signed(3), 2)})


def test_pack_matches_amaranth_const():
    rng = np.random.default_rng(0)
    n = 50
    fields = {"scale": rng.integers(0, 256, n), "codes": rng.integers(0, 64, (n, 5)),
              "flag": rng.integers(0, 2, n), "s": rng.integers(-4, 4, (n, 2))}
    rows = pack_beats(LAYOUT, fields)
    for k in range(n):
        const = LAYOUT.const({"scale": int(fields["scale"][k]),
                              "codes": [int(c) for c in fields["codes"][k]],
                              "flag": int(fields["flag"][k]),
                              "s": [int(c) for c in fields["s"][k]]})
        assert int.from_bytes(rows[k].tobytes(), "little") == const.as_value().value
    back = unpack_beats(LAYOUT, rows)
    for name, v in fields.items():
        np.testing.assert_array_equal(back[name], v)


def test_describe_layout():
    d = describe_layout(LAYOUT)
    assert d["width"] == 8 + 30 + 1 + 6
    assert d["fields"][1] == {"name": "codes", "offset": 8, "width": 6, "count": 5,
                              "signed": False}
