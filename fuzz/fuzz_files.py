#!/usr/bin/env python3
"""Coverage-guided fuzzing of cgdn's parameter-file readers with atheris.

Each input is written to a file and read by ``ParameterStore.load``,
``ParameterStore.restore`` (into a store holding one GDN layer) and ``load_layers``. The
properties checked on every input:

* only ``ValueError`` and ``OSError`` (and their subclasses) escape; anything else is a
  crash that atheris reports, with the input saved;
* time: no input takes longer than ``TIME_LIMIT_S`` to refuse or to load;
* memory: the process's peak resident size stays under ``MEMORY_LIMIT_MB`` (the readers
  are bounded by ``max_bytes``; the fuzzer sets 64 MiB, so a file cannot make a reader
  allocate much more than that, whatever its headers say).

    pip install atheris
    python fuzz/fuzz_files.py fuzz/corpus -max_total_time=1800      # 30 minutes
    python fuzz/fuzz_files.py fuzz/corpus -runs=0 crash-<hash>       # replay one input

``python fuzz/make_corpus.py`` writes the seed corpus (files of save, save_layers and the
CompressAI / TensorFlow importers' fixtures). Inputs that crashed become regression
tests in ``tests/fuzz_regressions/`` (``tests/test_files.py`` reads every one of them).
"""
import os
import resource
import sys
import tempfile
import time

import atheris

with atheris.instrument_imports(include=["cgdn", "zipfile", "numpy.lib.format", "json"]):
    import numpy as np

    import cgdn

TIME_LIMIT_S = 2.0
MEMORY_LIMIT_MB = 1024
MAX_BYTES = 64 << 20

_DIR = tempfile.mkdtemp(prefix="cgdn-fuzz-")
_PATH = os.path.join(_DIR, "input.npz")
_TARGET = cgdn.ParameterStore()
cgdn.gdn(np.ones((1, 2, 2, 3), np.float32), store=_TARGET, name="gdn")


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _read_all(path):
    for read in (lambda: cgdn.ParameterStore.load(path, max_bytes=MAX_BYTES),
                 lambda: _TARGET.restore(path, max_bytes=MAX_BYTES),
                 lambda: cgdn.load_layers(path, max_bytes=MAX_BYTES)):
        try:
            read()
        except (ValueError, OSError):
            pass


def test_one_input(data):
    with open(_PATH, "wb") as f:
        f.write(data)
    start = time.perf_counter()
    _read_all(_PATH)
    elapsed = time.perf_counter() - start
    if elapsed > TIME_LIMIT_S:
        raise RuntimeError(f"an input of {len(data)} bytes took {elapsed:.2f} s "
                           f"(limit {TIME_LIMIT_S} s)")
    if _peak_mb() > MEMORY_LIMIT_MB:
        raise MemoryError(f"peak resident size {_peak_mb():.0f} MB (limit {MEMORY_LIMIT_MB})")


def main():
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
