"""Parameter files: ``.npz`` archives written atomically and read defensively.

Files come from the internet, so reading one never runs code (no pickle: object arrays
are refused) and is bounded in memory and time before anything is decompressed. The zip
directory and each entry's ``.npy`` header are read first; an entry is refused with a
``ValueError`` naming it when

- its name is not UTF-8, is duplicated, too long, too deeply nested, or not ``*.npy``;
- it uses a compression other than none or deflate;
- its header is malformed, holds an object or non-numeric dtype, or a shape whose size
  does not match the entry's declared size ("inconsistent sizes");
- the entries together would decompress to more than ``max_bytes`` (1 GiB by default).

Only then is data read, never more than each entry's declared size (zipfile stops
there and checks the CRC). The format marker is read before any array.
"""
import contextlib
import json
import math
import os
import tempfile
import tokenize
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npy_format

from cgdn._reparam import gdn_layers
from cgdn._scopes import check_name

FORMAT = "cgdn-parameters-1"
FORMAT_KEY = "__cgdn_format__"
TRAINABLE_KEY = "__cgdn_trainable__"
LAYERS_KEY = "__cgdn_layers__"       # JSON text: the configuration of saved layers
RESERVED = (FORMAT_KEY, TRAINABLE_KEY, LAYERS_KEY)

DEFAULT_MAX_BYTES = 1 << 30          # total decompressed size a load may read
MAX_ENTRIES = 100_000
MAX_NAME_LENGTH = 1024               # characters of one variable name
MAX_NAME_DEPTH = 64                  # '/'-separated parts of one variable name
MAX_JSON_BYTES = 1 << 20
_NUMERIC_KINDS = "f"                 # variables are float32 or float64
_TEXT_KINDS = "U"                    # the marker, the trainable list, the layers' JSON


def write_parameter_file(path, arrays, trainable, layers=None):
    """Write ``arrays`` (name -> ndarray) to ``path`` atomically, with the format marker,
    the list of trainable names and, when given, ``layers`` (JSON-ready dict)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    payload = dict(arrays)
    payload[FORMAT_KEY] = np.array(FORMAT)
    payload[TRAINABLE_KEY] = np.array(list(trainable), dtype=str)
    if layers is not None:
        # layers in the caller's order (load_layers gives them back in it), settings sorted
        payload[LAYERS_KEY] = np.array(json.dumps(
            {name: dict(sorted(config.items())) for name, config in layers.items()}))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_max_bytes(max_bytes):
    if max_bytes is None:
        return DEFAULT_MAX_BYTES
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)):
        raise TypeError(f"max_bytes must be an int or None, got {type(max_bytes).__name__}")
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    return int(max_bytes)


def _check_entry_name(path, info, seen):
    raw = info.filename
    if not info.flag_bits & 0x800:
        # zipfile decoded the name as cp437; a UTF-8 name (the only encoding np.savez
        # writes) is plain ASCII then.
        if not raw.isascii():
            raise ValueError(f"{path}: an entry name is not UTF-8 ({raw!r} as cp437)")
    if raw in seen:
        raise ValueError(f"{path}: entry {raw!r} appears more than once")
    seen.add(raw)
    if not raw.endswith(".npy"):
        raise ValueError(f"{path}: entry {raw!r} is not a .npy array")
    name = raw[: -len(".npy")]
    if len(name) > MAX_NAME_LENGTH or name.count("/") >= MAX_NAME_DEPTH:
        raise ValueError(
            f"{path}: entry name {name[:60]!r}... is too long or too deeply nested "
            f"(at most {MAX_NAME_LENGTH} characters and {MAX_NAME_DEPTH} levels)"
        )
    if not name.isprintable():
        raise ValueError(f"{path}: entry name {name!r} holds control characters")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(
            f"{path}: entry {name!r} uses compression method {info.compress_type}; only "
            f"stored and deflated entries are read"
        )
    return name


def _read_header(path, name, stream):
    """``(shape, fortran_order, dtype, header_bytes)`` of one ``.npy`` stream."""
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, SyntaxError, TypeError, OverflowError, EOFError, RecursionError,
            tokenize.TokenError) as exc:   # TokenError: NumPy tokenizes old headers
        raise ValueError(f"{path}: entry {name!r} has a malformed .npy header: {exc}") from None
    return shape, fortran, dtype


def _check_header(path, name, shape, dtype, declared, header_bytes):
    if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS + _TEXT_KINDS:
        raise ValueError(
            f"{path}: entry {name!r} has dtype {dtype}; parameter files hold float arrays "
            f"and text only (never objects or pickles)"
        )
    if len(shape) > 32 or any(not isinstance(d, int) or d < 0 for d in shape):
        raise ValueError(f"{path}: entry {name!r} has an invalid shape {shape!r}")
    nbytes = math.prod(shape) * dtype.itemsize    # Python ints: no overflow
    if header_bytes + nbytes != declared:
        raise ValueError(
            f"{path}: entry {name!r} is inconsistent: its header says {shape} {dtype} "
            f"({nbytes} bytes) but the archive says {declared - header_bytes} bytes"
        )
    return nbytes


def _check_marker(path, marker):
    if marker is None or marker.dtype.kind != "U" or marker.ndim != 0 or marker.item() != FORMAT:
        raise ValueError(f"{path!s} is not a cgdn parameter file (no {FORMAT} marker)")


def read_npz(path, *, max_bytes=None):
    """``{name: ndarray}`` of a cgdn ``.npz`` file, read within the bounds described
    above. The format marker is checked first, from the directory and then its value,
    so a foreign archive costs nothing to refuse."""
    max_bytes = check_max_bytes(max_bytes)
    try:
        archive = zipfile.ZipFile(path)
    except OSError:
        raise   # a missing or unreadable file: FileNotFoundError, PermissionError, ...
    except (zipfile.BadZipFile, UnicodeDecodeError, ValueError, EOFError,
            NotImplementedError) as exc:   # NotImplementedError: zip versions it cannot read
        raise ValueError(f"{path!s} is not a readable .npz parameter file: {exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise ValueError(f"{path!s} holds {len(infos)} entries (at most {MAX_ENTRIES})")
        seen, entries = set(), []
        total = 0
        for info in infos:
            name = _check_entry_name(path, info, seen)
            total += info.file_size
            if info.file_size > max_bytes or total > max_bytes:
                raise ValueError(
                    f"{path!s}: entry {name!r} would decompress to {info.file_size} bytes, "
                    f"{total} in all, over the limit of {max_bytes} (max_bytes)"
                )
            entries.append((name, info))
        # the format marker first: a foreign file is refused before reading arrays
        entries.sort(key=lambda item: item[0] != FORMAT_KEY)
        if not entries or entries[0][0] != FORMAT_KEY:
            _check_marker(path, None)
        arrays = {}
        for name, info in entries:
            arrays[name] = _read_entry(path, archive, name, info)
            if name == FORMAT_KEY:
                _check_marker(path, arrays[name])
    return arrays


def _read_entry(path, archive, name, info):
    try:
        with archive.open(info) as stream:
            shape, fortran, dtype = _read_header(path, name, stream)
            header_bytes = stream.tell()
            nbytes = _check_header(path, name, shape, dtype, info.file_size, header_bytes)
            data = stream.read(nbytes)
            if len(data) != nbytes or stream.read(1):
                raise ValueError(f"entry {name!r} is truncated or longer than its header says")
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError,
            zlib.error) as exc:     # zlib.error: a corrupt deflate stream
        raise ValueError(f"{path!s}: entry {name!r} cannot be read: {exc}") from None
    arr = np.frombuffer(data, dtype=dtype)
    if fortran:
        arr = arr.reshape(shape[::-1]).T
    else:
        arr = arr.reshape(shape)
    return np.array(arr, dtype=dtype.newbyteorder("="), order="C")


def read_layers_json(path, value):
    """The saved layers' configurations from the ``__cgdn_layers__`` entry."""
    if value.dtype.kind != "U" or value.ndim != 0:
        raise ValueError(f"{path!s}: malformed {LAYERS_KEY} entry")
    text = value.item()
    if len(text.encode("utf-8", "surrogatepass")) > MAX_JSON_BYTES:
        raise ValueError(f"{path!s}: {LAYERS_KEY} is larger than {MAX_JSON_BYTES} bytes")
    try:
        layers = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path!s}: {LAYERS_KEY} is not valid JSON: {exc}") from None
    if not isinstance(layers, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in layers.items()):
        raise ValueError(f"{path!s}: {LAYERS_KEY} must map layer names to settings")
    return layers


def read_parameter_file(path, *, max_bytes=None, with_layers=False):
    """``(arrays, trainable names[, layers])`` from a saved file, fully validated."""
    contents = read_npz(path, max_bytes=max_bytes)
    del contents[FORMAT_KEY]
    trainable = contents.pop(TRAINABLE_KEY, np.array([], dtype=str))
    if trainable.dtype.kind != "U" or trainable.ndim != 1:
        raise ValueError(f"{path!s}: malformed list of trainable variables")
    layers_entry = contents.pop(LAYERS_KEY, None)
    layers = {} if layers_entry is None else read_layers_json(path, layers_entry)
    arrays = {}
    for name, arr in contents.items():
        try:
            check_name(name)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path!s}: {exc}") from None
        if arr.dtype not in (np.float32, np.float64):
            raise ValueError(f"{path!s}: {name!r} must be float32 or float64, got {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{path!s}: {name!r} holds non-finite values")
        arrays[name] = arr
    gdn_layers(arrays, source=str(path))
    unknown = set(trainable.tolist()) - set(arrays)
    if unknown:
        raise ValueError(f"{path!s}: trainable names without variables: {sorted(unknown)}")
    if with_layers:
        return arrays, set(trainable.tolist()), layers
    return arrays, set(trainable.tolist())
