"""Parameter files: saving atomically, loading strictly."""
import io
import os
import pathlib
import pickle
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest

import cgdn
from cgdn import _files


def test_save_load_round_trip(store, tmp_path):
    path = tmp_path / "params.npz"
    store.save(path)
    loaded = cgdn.ParameterStore.load(path)
    assert list(loaded) == list(store)
    for name in store:
        np.testing.assert_array_equal(loaded[name], store[name])
        assert loaded[name].dtype == store[name].dtype
    assert loaded.trainable_variables == store.trainable_variables
    assert sorted(os.listdir(tmp_path)) == ["params.npz"]  # no temporary left behind


def test_restore_is_strict_and_all_or_nothing(store, tmp_path):
    path = tmp_path / "p.npz"
    store.save(path)
    target = pickle.loads(pickle.dumps(store))
    target["a/reparam_beta"] = [9.0, 9.0, 9.0]
    target.restore(path)
    np.testing.assert_array_equal(target["a/reparam_beta"], store["a/reparam_beta"])

    other = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 2, 2, 3), np.float32), name="a", store=other)
    before = {n: other[n].copy() for n in other}
    with pytest.raises(ValueError, match=r"missing \[\].*extra \['b/reparam_beta'"):
        other.restore(path)
    assert {n: other[n].tolist() for n in other} == {n: v.tolist() for n, v in before.items()}


def test_load_refuses_bad_files(tmp_path):
    def write(name, **arrays):
        path = tmp_path / name
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    fmt = {"__cgdn_format__": np.array("cgdn-parameters-1")}
    cases = {
        "not a cgdn parameter file": write("a.npz", **{"g/reparam_beta": np.ones(2)}),
        "float arrays and text only": write("b.npz", **fmt, **{"g/x": np.ones(2, int)}),
        "must be float32 or float64": write("b2.npz", **fmt, **{"g/x": np.ones(2, np.float16)}),
        "non-finite": write("c.npz", **fmt, **{"g/reparam_beta": np.array([1, np.nan]),
                                                 "g/reparam_gamma": np.eye(2)}),
        "reparam_gamma is missing": write("d.npz", **fmt, **{"g/reparam_beta": np.ones(2)}),
        r"\(C, C\)": write("e.npz", **fmt, **{"g/reparam_beta": np.ones(2),
                                              "g/reparam_gamma": np.eye(3)}),
        "never objects or pickles": write("f.npz", **fmt, **{"g/x": np.array([object()])}),
    }
    for match, path in cases.items():
        with pytest.raises(ValueError, match=match):
            cgdn.ParameterStore.load(path)
    good = tmp_path / "good.npz"
    s = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 2, 2, 3)), store=s)
    s.save(good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable"):
        cgdn.ParameterStore.load(truncated)
    # a file that cannot be opened: the OSError of opening it, from every reader
    for read in (cgdn.ParameterStore.load, cgdn.load_layers, s.restore):
        with pytest.raises(FileNotFoundError, match="does-not-exist"):
            read(tmp_path / "does-not-exist.npz")
        with pytest.raises(IsADirectoryError):
            read(tmp_path)


def test_restore_into_another_store_points_to_load(tmp_path):
    s = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 2, 2, 3)), store=s)
    s.save(tmp_path / "s.npz")
    with pytest.raises(ValueError, match=r"extra \['gdn/reparam_beta', 'gdn/reparam_gamma'\]; "
                                         r"restore only assigns .*ParameterStore.load\(path\)"):
        cgdn.ParameterStore().restore(tmp_path / "s.npz")


def test_interrupted_save_keeps_previous_file(store, tmp_path, monkeypatch):
    path = tmp_path / "p.npz"
    store.save(path)
    original = path.read_bytes()

    def failing_savez(f, **arrays):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(_files.np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        store.save(path)
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["p.npz"]


@pytest.mark.parametrize("failing", ["fsync", "replace", "savez_midway"])
def test_save_interrupted_at_any_point_keeps_previous_file(store, tmp_path, monkeypatch,
                                                           failing):
    path = tmp_path / "p.npz"
    store.save(path)
    original = path.read_bytes()
    changed = pickle.loads(pickle.dumps(store))
    changed["a/reparam_beta"] = [5.0, 5.0, 5.0]
    if failing == "fsync":
        monkeypatch.setattr(_files.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("io")))
    elif failing == "replace":
        monkeypatch.setattr(_files.os, "replace",
                            lambda a, b: (_ for _ in ()).throw(OSError("io")))
    else:
        real_savez = np.savez

        def savez_then_fail(f, **arrays):
            real_savez(f, **arrays)
            f.truncate(f.tell() // 2)
            raise KeyboardInterrupt  # interrupted, not just failed

        monkeypatch.setattr(_files.np, "savez", savez_then_fail)
    with pytest.raises((OSError, KeyboardInterrupt)):
        changed.save(path)
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["p.npz"]


def test_restore_refuses_bad_files_and_keeps_store(store, tmp_path):
    snapshot = {n: store[n].copy() for n in store}
    bad_nan = tmp_path / "nan.npz"
    other = pickle.loads(pickle.dumps(store))
    other._variables["a/reparam_beta"] = np.array([1.0, np.nan, 1.0], np.float32)  # bypass
    other.save(bad_nan)
    shape = tmp_path / "shape.npz"
    s2 = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 2, 2, 4), np.float32), name="a", store=s2)
    cgdn.gdn(np.ones((1, 2, 2, 5)), name="b", store=s2)
    s2.save(shape)
    missing = tmp_path / "missing.npz"
    s3 = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 2, 2, 3), np.float32), name="a", store=s3)
    s3.save(missing)
    for path, match in ((bad_nan, "non-finite"), (shape, "shape"),
                        (missing, r"missing \['b/reparam_beta'")):
        with pytest.raises(ValueError, match=match):
            store.restore(path)
        for name, value in snapshot.items():
            np.testing.assert_array_equal(store[name], value)


# --- files from untrusted sources ---------------------------------------------------------

def _npy_header(shape, descr="<f4"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def _write_zip(path, entries):
    """A zip written by hand, so that its directory can lie. ``entries``: dicts with
    name (bytes), data (the stored bytes), method (0 stored, 8 deflated), size (the
    declared uncompressed size), crc, flags."""
    local, central = b"", b""
    for e in entries:
        offset = len(local)
        fields = (20, e.get("flags", 0), e["method"], 0, 0x21, e["crc"], len(e["data"]),
                  e["size"], len(e["name"]), 0)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + e["name"] + e["data"]
        central += (struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields[:-1], 0, 0, 0,
                                0, 0, offset) + e["name"])
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                      len(central), len(local), 0)
    path.write_bytes(local + central + end)
    return path


def _stored(name, payload, **overrides):
    entry = {"name": name, "data": payload, "method": 0, "size": len(payload),
             "crc": zlib.crc32(payload)}
    entry.update(overrides)
    return entry


_MARKER = _npy_header((), "<U17") + "cgdn-parameters-1".encode("utf-32-le")


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory):
    """A valid 2 MB .npz whose one entry inflates to 2 GiB of zeros (declared truthfully,
    CRC correct), next to a correct format marker."""
    n = 2**29                                      # float32 zeros: 2 GiB
    header = _npy_header((n,))
    chunk = 64 << 20
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = comp.compress(header) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
    data = head + block * (4 * n // chunk) + comp.flush(zlib.Z_FINISH)
    crc, zeros = zlib.crc32(header), bytes(chunk)
    for _ in range(4 * n // chunk):
        crc = zlib.crc32(zeros, crc)
    path = tmp_path_factory.mktemp("bomb") / "bomb.npz"
    _write_zip(path, [_stored(b"__cgdn_format__.npy", _MARKER),
                      {"name": b"g/reparam_beta.npy", "data": data, "method": 8,
                       "size": len(header) + 4 * n, "crc": crc}])
    return path


def test_the_zip_bomb_is_real(zip_bomb):
    assert zip_bomb.stat().st_size < 3 << 20
    with zipfile.ZipFile(zip_bomb) as z:
        info = z.getinfo("g/reparam_beta.npy")
        assert info.file_size > 2 << 30
        with z.open(info) as f:
            head = f.read(1 << 20)
    assert head.startswith(b"\x93NUMPY") and not any(head[200:])


def test_zip_bomb_is_refused_fast_and_small(zip_bomb):
    code = (
        "import time, cgdn\n"
        "t = time.perf_counter()\n"
        "try:\n"
        f"    cgdn.ParameterStore.load({str(zip_bomb)!r})\n"
        "except ValueError as e:\n"
        "    message = str(e)\n"
        "elapsed = time.perf_counter() - t\n"
        "rss = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(elapsed, int(rss) // 1024, message)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    elapsed, peak_mib, message = out.split(" ", 2)
    assert "g/reparam_beta" in message and "max_bytes" in message
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        # (under AddressSanitizer, tools/check_sanitizers.sh, the process's peak memory
        # holds the sanitizer's shadow and its quarantine of freed blocks, and every
        # allocation is slower: the bounds are the plain build's)
        assert float(elapsed) < 1.0
        assert int(peak_mib) < 100


def test_limit_is_settable(tmp_path, store):
    path = tmp_path / "p.npz"
    store.save(path)
    with pytest.raises(ValueError, match="over the limit of 100"):
        cgdn.ParameterStore.load(path, max_bytes=100)
    with pytest.raises(ValueError, match="over the limit"):
        store.restore(path, max_bytes=100)
    assert list(cgdn.ParameterStore.load(path, max_bytes=1 << 20)) == list(store)
    with pytest.raises(TypeError, match="max_bytes"):
        cgdn.ParameterStore.load(path, max_bytes=1.5)


@pytest.mark.parametrize("case", ["huge shape", "inconsistent", "lying size", "duplicate",
                                  "deep", "long", "non-utf8 flagged", "non-utf8 cp437",
                                  "control", "bzip2", "not npy", "bad header", "object",
                                  "marker later"])
def test_hostile_archives_are_refused(tmp_path, case):
    beta = _npy_header((2,), "<f4") + np.ones(2, "<f4").tobytes()
    gamma = _npy_header((2, 2), "<f4") + np.eye(2, dtype="<f4").tobytes()
    entries = [_stored(b"__cgdn_format__.npy", _MARKER), _stored(b"g/reparam_beta.npy", beta),
               _stored(b"g/reparam_gamma.npy", gamma)]
    match = {
        "huge shape": "inconsistent", "inconsistent": "inconsistent",
        "lying size": "over the limit", "duplicate": "more than once",
        "deep": "too deeply nested", "long": "too long", "non-utf8 flagged": "not a readable",
        "non-utf8 cp437": "not UTF-8", "control": "control characters",
        "bzip2": "compression method", "not npy": "not a .npy", "bad header": "malformed",
        "object": "never objects", "marker later": None,
    }[case]
    if case == "huge shape":          # header claims 2**40 floats, the entry holds 8 bytes
        entries[1] = _stored(b"g/reparam_beta.npy", _npy_header((2**40,)) + bytes(8))
    elif case == "inconsistent":      # header (3,), data and declared size for (2,)
        entries[1] = _stored(b"g/reparam_beta.npy", _npy_header((3,)) + bytes(8))
    elif case == "lying size":        # declares 3 GiB, holds a few bytes
        entries[1] = _stored(b"g/reparam_beta.npy", beta, size=3 << 30)
    elif case == "duplicate":
        entries.append(_stored(b"g/reparam_beta.npy", beta))
    elif case == "deep":
        entries.append(_stored(b"a/" * 5000 + b"reparam_beta.npy", beta))
    elif case == "long":
        entries.append(_stored(b"x" * 5000 + b".npy", beta))
    elif case == "non-utf8 flagged":
        entries.append(_stored(b"g/\xff\xfe.npy", beta, flags=0x800))
    elif case == "non-utf8 cp437":
        entries.append(_stored(b"g/\xff\xfe.npy", beta))
    elif case == "control":
        entries.append(_stored(b"g/a\nb.npy", beta))
    elif case == "bzip2":
        entries[1] = _stored(b"g/reparam_beta.npy", beta, method=12)
    elif case == "not npy":
        entries.append(_stored(b"g/readme.txt", b"hello"))
    elif case == "bad header":
        entries[1] = _stored(b"g/reparam_beta.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': 1}    ")
    elif case == "object":
        entries[1] = _stored(b"g/reparam_beta.npy", _npy_header((1,), "|O") + bytes(8))
    elif case == "marker later":      # order in the archive does not matter
        entries = entries[1:] + entries[:1]
    path = _write_zip(tmp_path / "hostile.npz", entries)
    if match is None:
        assert sorted(cgdn.ParameterStore.load(path)) == ["g/reparam_beta", "g/reparam_gamma"]
        return
    with pytest.raises(ValueError, match=match):
        cgdn.ParameterStore.load(path)


def test_foreign_archive_is_refused_before_its_arrays_are_read(tmp_path, monkeypatch):
    # a 64 MiB array (within every limit) without the marker, or with a wrong one
    big = _npy_header((16 << 20,)) + bytes(64 << 20)
    read = []
    real = _files._read_entry
    monkeypatch.setattr(_files, "_read_entry", lambda *a: read.append(a[2]) or real(*a))
    for label, entries, match in (
            ("none", [_stored(b"weights.npy", big)], "no cgdn-parameters-1 marker"),
            ("wrong", [_stored(b"weights.npy", big),
                       _stored(b"__cgdn_format__.npy", _npy_header((), "<U3")
                               + "abc".encode("utf-32-le"))], "no cgdn-parameters-1 marker")):
        path = _write_zip(tmp_path / f"{label}.npz", entries)
        with pytest.raises(ValueError, match=match):
            cgdn.ParameterStore.load(path)
    assert read == ["__cgdn_format__"]  # the wrong marker only; never the big array


FUZZ_REGRESSIONS = sorted((pathlib.Path(__file__).parent / "fuzz_regressions").glob("*"))


@pytest.mark.parametrize("path", FUZZ_REGRESSIONS, ids=[p.name for p in FUZZ_REGRESSIONS])
def test_fuzz_regressions_are_refused_clearly(path):
    """Files the fuzzer (fuzz/fuzz_files.py) found escaping with another exception than
    ValueError / OSError, minimized: every reader refuses them with a ValueError now."""
    target = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 2, 2, 3), np.float32), store=target)
    for read in (cgdn.ParameterStore.load, target.restore, cgdn.load_layers):
        with pytest.raises(ValueError, match="not a readable|cannot be read|not a cgdn|"
                                             "malformed .npy header"):
            read(path)


def test_fuzz_regressions_exist():
    assert FUZZ_REGRESSIONS, "tests/fuzz_regressions is empty: the regression files are gone"
