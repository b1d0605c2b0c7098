"""The narrowgen CLI: outputs, determinism, and one clear line for every bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gen.cli import main

from ..conftest import ROOT


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("narrowgen: error: ")
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_list_plain(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert "mx-quantize" in names and "mx-dequantize" in names


def test_list_json_gives_every_parameter(capsys):
    code, out, _ = run(capsys, "list", "--json")
    cores = {c["name"]: c for c in json.loads(out)}
    params = {p["name"]: p for p in cores["mx-quantize"]["params"]}
    assert set(params) == {"format", "block_size", "rounding", "lanes"}
    assert params["rounding"] == {"name": "rounding", "type": "enum", "default": "even",
                                  "allowed": ["even", "nearest"], "doc": params["rounding"]["doc"]}
    assert "x: float32" in cores["mx-quantize"]["vectors"]


def test_gen_is_byte_identical(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        code, out, _ = run(capsys, "gen", "mx-quantize", "-p", "format=mxfp4_e2m1",
                           "-p", "block_size=8", "-o", str(d))
        assert code == 0
    top = "mx_quantize_fp4_e2m1_b8_l8_even"
    for name in (f"{top}.v", "manifest.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    text = (a / f"{top}.v").read_text()
    assert f"module {top}(" in text
    assert "\\i__payload." not in text          # debug wires stripped
    m = json.loads((a / "manifest.json").read_text())
    assert m["core"] == "mx-quantize" and m["params"]["lanes"] == 8
    assert m["ports"]["o"]["payload"]["width"] == 8 + 8 * 4
    assert isinstance(m["latency"], int) and m["latency"] >= 1
    assert len(m["verilog_sha256"]) == 64


@pytest.mark.parametrize("argv, fragments", [
    (["gen", "mx-frobnicate"], ["unknown core 'mx-frobnicate'", "mx-quantize"]),
    (["gen", "mx-quantize", "-p", "block_size=3"], ["block_size=3", "allowed: 2, 4"]),
    (["gen", "mx-quantize", "-p", "format=fp9"], ["format=fp9", "mxint8"]),
    (["gen", "mx-quantize", "-p", "speed=9"], ["unknown parameter 'speed'"]),
    (["verify", "mx-quantize", "-p", "lanes=3"], ["lanes=3"]),
])
def test_bad_parameters(capsys, argv, fragments):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


def test_unwritable_output_dir(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "gen", "mx-quantize", "-o", str(blocker / "sub"))
    assert_one_line_error(code, err, "cannot write to output directory")


# --- quantize ----------------------------------------------------------------------------------

def test_quantize_writes_the_golden_contract(tmp_path, capsys):
    from sim.golden import mx
    rng = np.random.default_rng(5)
    x = (rng.standard_t(3, (3, 7, 40)) * 100).astype(np.float32)
    src, dst = tmp_path / "x.npy", tmp_path / "q.npz"
    np.save(src, x)
    code, out, _ = run(capsys, "quantize", str(src), "-f", "mxfp6_e2m3", "--block-size", "16",
                       "--axis", "1", "--rounding", "nearest", "-o", str(dst))
    assert code == 0, out
    z = np.load(dst)
    q = mx.quantize(x, "mxfp6_e2m3", block_size=16, axis=1, rounding="nearest")
    np.testing.assert_array_equal(z["scales"], q.scales)
    np.testing.assert_array_equal(z["codes"], q.codes)
    assert z["scales"].dtype == np.uint8 and z["codes"].dtype == np.uint8
    assert z["values"].dtype == np.float32 and z["values"].shape == x.shape
    assert str(z["format"]) == "mxfp6_e2m3" and int(z["block_size"]) == 16
    assert str(z["rounding"]) == "nearest"


@pytest.mark.parametrize("setup, fragments", [
    ("missing", ["does not exist"]),
    ("corrupt", ["not a readable"]),
    ("float64", ["holds float64", "float32"]),
    ("empty", ["empty"]),
    ("npz", ["must be a .npy array"]),
])
def test_quantize_bad_input_file(tmp_path, capsys, setup, fragments):
    src, dst = tmp_path / "in.npy", tmp_path / "out.npz"
    if setup == "corrupt":
        src.write_bytes(b"\x93NUMPY garbage")
    elif setup == "float64":
        np.save(src, np.ones(8))
    elif setup == "empty":
        np.save(src, np.zeros(0, np.float32))
    elif setup == "npz":
        src = tmp_path / "in.npz"
        np.savez(src, a=np.ones(8, np.float32), b=np.ones(8, np.float32))
    code, _, err = run(capsys, "quantize", str(src), "-f", "mxint8", "-o", str(dst))
    assert_one_line_error(code, err, *fragments)
    assert not dst.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.npz")]


@pytest.mark.parametrize("extra, fragments", [
    (["-f", "mxint8", "--block-size", "3"], ["--block-size", "power of two in 1..1024, not 3"]),
    (["-f", "fp9"], ["invalid choice: 'fp9'"]),
    (["-f", "mxint8", "--axis", "5"], ["--axis 5 is out of range", "-1..0"]),
])
def test_quantize_bad_options(tmp_path, capsys, extra, fragments):
    src, dst = tmp_path / "in.npy", tmp_path / "out.npz"
    np.save(src, np.ones(8, np.float32))
    try:
        code = main(["quantize", str(src), "-o", str(dst)] + extra)
    except SystemExit as e:                 # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert all(f in err for f in fragments), err
    assert not dst.exists()


def test_no_traceback_from_the_installed_command(tmp_path):
    """The console script itself, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "gen.cli", "verify", "mx-quantize", "--vectors",
                        str(tmp_path / "nope.npz")], capture_output=True, text=True, env=env,
                       cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == (f"narrowgen: error: vectors file '{tmp_path / 'nope.npz'}' "
                                f"does not exist")


# --- verify: vectors in, hardware outputs out ----------------------------------------------------

def test_verify_vectors_and_dump_mx_quantize(tmp_path, capsys, work_dir):
    from sim.golden import mx
    rng = np.random.default_rng(9)
    x = (rng.standard_t(2, (3, 70)) * 1e3).astype(np.float32)    # 70: a partial last block
    x[1, 5] = np.nan
    vec, dump = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(vec, x=x)
    code, out, _ = run(capsys, "verify", "mx-quantize", "-p", "format=mxfp6_e3m2", "--sim",
                       "icarus", "--vectors", str(vec), "--dump", str(dump),
                       "--work-dir", str(work_dir))
    assert code == 0, out
    assert "vectors     9 checked, 0 mismatches" in out
    q = mx.quantize(x, "mxfp6_e3m2")
    z = np.load(dump)
    assert z["scales"].dtype == np.uint8 and z["scales"].shape == (3, 3)
    assert z["codes"].dtype == np.uint8 and z["codes"].shape == (3, 96)
    np.testing.assert_array_equal(z["scales"], q.scales)
    np.testing.assert_array_equal(z["codes"], q.codes)


def test_verify_vectors_and_dump_mx_dequantize(tmp_path, capsys, work_dir):
    from sim.golden import mx
    rng = np.random.default_rng(4)
    scales = rng.integers(0, 256, (2, 5)).astype(np.uint8)
    codes = rng.integers(0, 16, (2, 5 * 32)).astype(np.uint8)
    vec, dump = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(vec, scales=scales, codes=codes)
    code, out, _ = run(capsys, "verify", "mx-dequantize", "-p", "format=mxfp4_e2m1", "--sim",
                       "icarus", "--vectors", str(vec), "--dump", str(dump),
                       "--work-dir", str(work_dir))
    assert code == 0, out
    want = mx.dequantize_blocks(scales.reshape(-1), codes.reshape(-1, 32), "mxfp4_e2m1")
    got = np.load(dump)["values"]
    assert got.dtype == np.float32 and got.shape == codes.shape
    np.testing.assert_array_equal(got.view(np.uint32), want.reshape(codes.shape))


@pytest.mark.parametrize("arrays, fragments", [
    ({"y": np.ones(32, np.float32)}, ["no array 'x'", "it holds: y"]),
    ({"x": np.ones(32)}, ["array 'x' must be float32", "not float64"]),
    ({"x": np.ones(0, np.float32)}, ["array 'x' is empty"]),
])
def test_verify_bad_vectors_mx_quantize(tmp_path, capsys, arrays, fragments):
    vec, dump = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(vec, **arrays)
    code, _, err = run(capsys, "verify", "mx-quantize", "--vectors", str(vec),
                       "--dump", str(dump))
    assert_one_line_error(code, err, *fragments)
    assert not dump.exists()


@pytest.mark.parametrize("arrays, fragments", [
    ({"scales": np.zeros(2, np.uint8), "codes": np.zeros(63, np.uint8)},
     ["'codes' must have shape (64,)", "not (63,)"]),
    ({"scales": np.zeros(2, np.uint8), "codes": np.full(64, 16, np.uint8)},
     ["holds 16", "4-bit mxfp4_e2m1", "0..15"]),
    ({"scales": np.zeros(2, np.int32), "codes": np.zeros(64, np.uint8)},
     ["'scales' must be uint8", "not int32"]),
])
def test_verify_bad_vectors_mx_dequantize(tmp_path, capsys, arrays, fragments):
    vec = tmp_path / "in.npz"
    np.savez(vec, **arrays)
    code, _, err = run(capsys, "verify", "mx-dequantize", "-p", "format=mxfp4_e2m1",
                       "--vectors", str(vec))
    assert_one_line_error(code, err, *fragments)


def test_verify_corrupt_vectors_and_unwritable_dump(tmp_path, capsys):
    vec = tmp_path / "in.npz"
    vec.write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = run(capsys, "verify", "mx-quantize", "--vectors", str(vec))
    assert_one_line_error(code, err, "is not a readable .npy/.npz file")
    np.savez(vec, x=np.ones(32, np.float32))
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "verify", "mx-quantize", "--vectors", str(vec), "--dump",
                       str(blocker / "out.npz"))
    assert_one_line_error(code, err, "cannot write dump file")


# --- bcnn-conv: parameters, vectors and dump (issue 5 schema) -----------------------------------

@pytest.mark.parametrize("argv, fragments", [
    (["gen", "bcnn-conv", "-p", "out_par=17"], ["out_par=17", "1..c_out (16)"]),
    (["gen", "bcnn-conv", "-p", "pad=2"], ["pad=2", "allowed: 0, 1"]),
    (["gen", "bcnn-conv", "-p", "kernel=dense"], ["kernel=dense", "full, separable"]),
    (["gen", "bcnn-conv", "-p", "word=0"], ["word=0", "1..512"]),
    (["gen", "bcnn-conv", "-p", "pool=true", "-p", "thresholds=false"],
     ["pool=true", "thresholds=true"]),
    (["gen", "bcnn-conv", "-p", "pool=true", "-p", "width=1"], ["pool=true", "width and height"]),
])
def test_bad_bcnn_parameters(capsys, argv, fragments):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


BCNN_SMALL = ["-p", "width=5", "-p", "height=3", "-p", "c_in=6", "-p", "c_out=3", "-p", "word=4",
              "-p", "out_par=2"]


def _pm1(rng, shape):
    return np.where(rng.random(shape) < 0.5, 1, -1).astype(np.int8)


@pytest.mark.parametrize("kernel, pool", [("separable", False), ("full", True)])
def test_verify_vectors_and_dump_bcnn_conv(tmp_path, capsys, work_dir, kernel, pool):
    from sim.golden import bcnn
    rng = np.random.default_rng(8)
    x = _pm1(rng, (6, 3, 5))
    weights = ({"w": _pm1(rng, (3, 6, 3, 3))} if kernel == "full" else
               {"u": _pm1(rng, (3, 6, 3)), "v": _pm1(rng, (3, 6, 3))})
    t = np.array([-3, 0, 4], np.int32)
    vec, dump = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(vec, x=x, t=t, **weights)
    code, out, _ = run(capsys, "verify", "bcnn-conv", *BCNN_SMALL, "-p", f"kernel={kernel}",
                       "-p", f"pool={str(pool).lower()}", "-p", "pad=1", "--sim", "icarus",
                       "--vectors", str(vec), "--dump", str(dump), "--work-dir", str(work_dir))
    assert code == 0, out
    want = bcnn.layer(x, t=t, kernel=kernel, pad=1, pool=pool, **weights)["y"]
    got = np.load(dump)["y"]
    assert got.dtype == np.int8 and got.shape == want.shape == ((3, 1, 2) if pool else (3, 3, 5))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("arrays, fragments", [
    ({"x": np.ones((6, 3, 5), np.int8), "u": np.ones((3, 6, 3), np.int8),
      "v": np.ones((3, 6, 3), np.int8)}, ["no array 't'", "it holds: u, v, x"]),
    ({"x": np.ones((6, 3, 4), np.int8), "u": np.ones((3, 6, 3), np.int8),
      "v": np.ones((3, 6, 3), np.int8), "t": np.zeros(3, np.int32)},
     ["'x' must have shape [c_in, height, width] = [6, 3, 5]", "not [6, 3, 4]"]),
    ({"x": np.zeros((6, 3, 5), np.int8), "u": np.ones((3, 6, 3), np.int8),
      "v": np.ones((3, 6, 3), np.int8), "t": np.zeros(3, np.int32)},
     ["'x' must hold only +1 and -1", "found 0"]),
    ({"x": np.ones((6, 3, 5), np.int8), "w": np.ones((3, 6, 3, 3), np.int8),
      "t": np.zeros(3, np.int32)}, ["no array 'u'", "kernel=separable"]),
    ({"x": np.ones((6, 3, 5), np.int8), "u": np.ones((3, 6, 3), np.int8),
      "v": np.ones((3, 6, 3), np.int8), "t": np.full(3, 999, np.int32)},
     ["'t' holds 999..999", "-64..63"]),
])
def test_verify_bad_vectors_bcnn_conv(tmp_path, capsys, arrays, fragments):
    vec = tmp_path / "in.npz"
    np.savez(vec, **arrays)
    code, _, err = run(capsys, "verify", "bcnn-conv", *BCNN_SMALL, "--vectors", str(vec))
    assert_one_line_error(code, err, *fragments)


@pytest.mark.parametrize("knob, primitive", [("fifo=ecp5-ebr", "DP16KD"),
                                             ("muxes=ecp5-pfumx", "PFUMX")])
def test_synth_of_ecp5_primitives_for_ice40_is_one_line(capsys, tmp_path, knob, primitive):
    """An ECP5-only parameter on an iCE40 target: a usage error naming the primitive, the
    parameter and the alternative, after the progress lines; no traceback."""
    code, _, err = run(capsys, "synth", "mx-dot", "-p", "a_format=mxfp4_e2m1", "-p",
                       "b_format=mxfp4_e2m1", "-p", "block_size=4", "-p", knob,
                       "--target", "ice40-up5k", "-o", str(tmp_path / "out"),
                       "--cache-dir", str(tmp_path / "cache"))
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("narrowgen: error: this core instantiates ECP5 " + primitive)
    assert knob in last and "use " + knob.split("=")[0] + "=generic" in last
