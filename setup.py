"""Build script: the extensions, their compile units, the OpenMP probe and the Cython
directives. Everything else (metadata, dependencies) lives in pyproject.toml.

What is compiled
----------------
``cgdn._core`` links, into one extension module:

- the core (``cgdn/_core.pyx``), compiled once without instruction-set flags: the
  Python boundary, the OpenMP threads over tiles, the density functions, the probes;
- the kernel variants: ``cgdn/simd/variant.c`` compiled once per instruction set and
  dtype (``VARIANTS`` below; the baseline has no -m flags: SSE2 on x86-64, NEON on
  aarch64; never -march=native), each exporting a const table of the C functions that
  run inside a tile; ``cgdn/simd/registry.c`` lists the variants built, and cgdn._isa
  picks the best one this CPU runs at import.

``cgdn._testing`` (entry points for the tests only) is compiled once, like the core.

Every unit is compiled on its own (in parallel, one job per CPU) into ``build/objects``
(the core and the testing module of a bounds-checked build into ``build/objects-debug``;
the kernels, which bounds checking does not change, are shared) and kept there: a unit
is compiled again only when its source, a header it depends on or its command changes,
and Cython runs again only when cgdn's Cython sources, the directives or Cython's
version change (by content: pip installs Cython afresh for every build), so
reinstalling (``pip install -e .`` again, even from pip's throwaway build folders)
compiles nothing that did not change.

Environment switches
--------------------
CGDN_CYTHON_DEBUG=1
    Compile the core with ``boundscheck`` and ``initializedcheck`` on.
CGDN_DISABLE_OPENMP=1
    Build serial kernels even when the compiler supports OpenMP.
CGDN_WIDE_EMULATION=1
    Also build the variant ``wide``: AVX-512's blockings in portable C, for the
    maintainers' check ``tools/check_wide.sh`` (never in wheels).
CGDN_VARIANTS=avx2,wide
    Build only the kernel variants named, and the baseline (maintainers' checks).
CGDN_SANITIZE=address,undefined
    Compile and link everything with gcc's sanitizers (``-fsanitize=...``, frame
    pointers, debug information; undefined behaviour stops the process), objects in a
    build folder of their own: ``tools/check_sanitizers.sh`` (never in wheels).
"""
import glob
import hashlib
import json
import os
import platform
import sys
import tempfile
import textwrap
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
DEBUG = os.environ.get("CGDN_CYTHON_DEBUG", "0") == "1"
SANITIZE = os.environ.get("CGDN_SANITIZE", "")
# -O1, as the sanitizers' documentation advises: -O3 took over 4 minutes per kernel unit
SANITIZE_FLAGS = ([f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer",
                   "-fno-sanitize-recover=undefined", "-g", "-O1"] if SANITIZE else [])

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

# -fno-math-errno lets gcc vectorize sqrt (measured 1.4-2.4x faster kernels); it is not
# -ffast-math, which changes results and the process's floating-point state. -g0: no
# debug information (Python's own CFLAGS ask for -g), a third of the compile time of the
# kernel units and most of their object size.
BASE_COMPILE_ARGS = ["-O3", "-fno-math-errno", "-g0"]

# Kernel variants, best first: name -> instruction-set flags.
VARIANTS = {
    "avx512": ["-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq", "-mavx2", "-mfma",
               "-mprefer-vector-width=512"],
    "avx2": ["-mavx2", "-mfma"],
    "baseline": [],
}
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
# For maintainers' checks only (tools/check_wide.sh): AVX-512's blockings in portable C,
# runnable on any CPU. -O1: gcc took minutes per kernel family at -O3 on 64-byte generic
# vectors (seconds at -O1).
if os.environ.get("CGDN_WIDE_EMULATION", "0") == "1":
    VARIANTS = {"avx512": VARIANTS["avx512"], "avx2": VARIANTS["avx2"],
                "wide": ["-DCGDN_EMULATE_WIDE", "-Wno-psabi", "-O1"],
                "baseline": []}

# For maintainers' checks only: CGDN_VARIANTS=avx2,wide builds those variants and the
# baseline (which every build has), e.g. for a sanitizer build of the variant under test.
if os.environ.get("CGDN_VARIANTS"):
    _only = {v.strip() for v in os.environ["CGDN_VARIANTS"].split(",")} | {"baseline"}
    VARIANTS = {name: flags for name, flags in VARIANTS.items() if name in _only}

SIMD = os.path.join("cgdn", "simd")
SIMD_HEADERS = sorted(glob.glob(os.path.join(SIMD, "*.h")))

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return omp_get_max_threads() > 0 ? 0 : 1;
    }
    """
)


def _openmp_flags(compiler):
    """Return (compile_args, link_args) enabling OpenMP, or None if it does not work."""
    if os.environ.get("CGDN_DISABLE_OPENMP", "0") == "1":
        return None
    if sys.platform == "win32" and compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write(OPENMP_PROBE)
        for compile_args, link_args in candidates:
            try:
                objects = compiler.compile([source], output_dir=tmp, extra_postargs=compile_args)
                compiler.link_executable(
                    objects, "probe", output_dir=tmp, extra_postargs=link_args
                )
            except Exception:  # any compiler or linker failure means "no OpenMP"
                continue
            return compile_args, link_args
    return None


def _compiles_with(compiler, flags):
    """Whether the compiler accepts ``flags`` (an instruction-set probe)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "isa.c")
        with open(source, "w") as f:
            f.write("int main(void) { return 0; }\n")
        try:
            compiler.compile([source], output_dir=tmp, extra_postargs=flags)
        except Exception:  # the compiler refused the flags
            return False
    return True


class Unit:
    """One compile job: a source, its macros and flags, and where its object goes."""

    def __init__(self, name, source, depends, macros=(), flags=(), prepare=None):
        self.name, self.source, self.depends = name, source, list(depends)
        self.macros, self.flags = list(macros), list(flags)
        self.prepare = prepare   # makes the source first (Cython), in the unit's job

    def command(self):
        return json.dumps([self.source, self.macros, self.flags])


def _priority(unit):
    """Compile order (longest first, so that two jobs end together): the kernel variants
    with wide vectors, then the core and the testing module, then the rest."""
    if unit.name.startswith(("avx512-", "avx2-", "wide-")):
        return 0
    return 1 if unit.name.startswith("cgdn.") else 2


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        # Objects live in the project's build folder, one per build kind, not in the
        # temporary folder pip gives editable builds: a reinstall reuses every object
        # whose inputs did not change, and a bounds-checked build never reuses a release
        # object of the Cython modules (or the other way round). The kernel units are
        # plain C that bounds checking does not touch: both kinds share them, so switching
        # to a bounds-checked build compiles only the core and the testing module.
        kind = "objects"
        if SANITIZE:
            kind += "-sanitize-" + SANITIZE.replace(",", "-")
        self.kernel_temp = os.path.join(HERE, "build", kind)
        self.build_temp = os.path.join(HERE, "build", kind + ("-debug" if DEBUG else ""))
        if self.parallel is None or self.parallel is True:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        self.check_extensions_list(self.extensions)
        is_msvc = self.compiler.compiler_type == "msvc"
        openmp = _openmp_flags(self.compiler)
        if openmp is None:
            warnings.warn(
                "cgdn: OpenMP was not found (or CGDN_DISABLE_OPENMP=1); calls default to one "
                "thread. cgdn.show_config() will report OpenMP off.",
                stacklevel=1,
            )
            openmp = ([], [])
        base = [] if is_msvc else BASE_COMPILE_ARGS + SANITIZE_FLAGS
        built = []
        units = {}   # extension name -> its units
        for name, flags in VARIANTS.items():
            if flags and (is_msvc or (not X86 and any(f.startswith("-m") for f in flags))
                          or not _compiles_with(self.compiler, flags)):
                if X86 and name != "wide":
                    warnings.warn(f"cgdn: the compiler cannot build the {name} kernels; skipped",
                                  stacklevel=1)
                continue
            built.append(name)
            for bits in ("32", "64"):
                units.setdefault("cgdn._core", []).append(Unit(
                    f"{name}-f{bits}", os.path.join(SIMD, "variant.c"), SIMD_HEADERS,
                    [("CGDN_VARIANT", name), ("CGDN_DTYPE", bits)], base + flags))
        units["cgdn._core"].append(Unit(
            "registry", os.path.join(SIMD, "registry.c"), [os.path.join(SIMD, "table.h")],
            [(f"CGDN_HAS_{name.upper()}", "1") for name in built if name != "baseline"], base))
        key = _cython_key()
        for ext in self.extensions:
            # the testing module's glue needs no speed: -O1 (4 s instead of 9)
            level = ["-O1"] if ext.name == "cgdn._testing" and not is_msvc else []
            # Cython runs in the unit's job, beside the kernels' compiles, not before them
            (pyx,) = ext.sources
            units.setdefault(ext.name, []).append(
                Unit(ext.name, _generated_c(pyx), SIMD_HEADERS + list(ext.depends),
                     ext.define_macros, base + openmp[0] + level,
                     prepare=lambda ext=ext: _cythonize(ext, key)))
            ext.extra_link_args = list(ext.extra_link_args) + openmp[1] + SANITIZE_FLAGS[:1]
        # the longest units first: the kernel variants with the widest vectors, the core
        order = sorted((u for us in units.values() for u in us), key=_priority)
        with ThreadPoolExecutor(max(1, int(self.parallel))) as pool:
            done = dict(zip(order, pool.map(self._compile_unit, order)))
        # Always link (about a second): the linker's own up-to-date check compares times
        # only, so a module linked from the other build kind's newer objects (a
        # bounds-checked build, then a release one) would be kept.
        self.compiler.force = True
        for ext in self.extensions:
            self._link(ext, [done[u] for u in units[ext.name]])

    def _compile_unit(self, unit):
        """The unit's object, compiled unless it is newer than its inputs and was made by
        the same command."""
        if unit.prepare is not None:
            unit.prepare()
        folder = self.build_temp if unit.name.startswith("cgdn.") else self.kernel_temp
        output_dir = os.path.join(folder, unit.name.replace(".", "_"))
        (obj,) = self.compiler.object_filenames([unit.source], output_dir=output_dir)
        stamp = obj + ".cmd"
        inputs = [unit.source] + unit.depends
        if (os.path.exists(obj) and os.path.exists(stamp)
                and os.path.getmtime(obj) >= max(os.path.getmtime(p) for p in inputs)):
            with open(stamp) as f:
                if f.read() == unit.command():
                    return obj
        started = time.perf_counter()
        self.compiler.compile([unit.source], output_dir=output_dir, macros=unit.macros,
                              include_dirs=[SIMD, "cgdn"] + self.include_dirs,
                              extra_postargs=unit.flags)
        with open(stamp, "w") as f:
            f.write(unit.command())
        print(f"cgdn: compiled {unit.name} ({os.path.basename(unit.source)}) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        return obj

    def _link(self, ext, objects):
        ext_path = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(ext_path) or ".", exist_ok=True)
        self.compiler.link_shared_object(
            objects + list(ext.extra_objects), ext_path,
            libraries=self.get_libraries(ext), library_dirs=ext.library_dirs,
            runtime_library_dirs=ext.runtime_library_dirs,
            extra_postargs=ext.extra_link_args, export_symbols=self.get_export_symbols(ext),
            debug=self.debug, build_temp=self.build_temp, target_lang=ext.language)


extensions = [
    Extension(
        name,
        [name.replace(".", "/") + ".pyx"],
        include_dirs=["cgdn"],
        depends=[os.path.join("cgdn", "_core.pxd"), os.path.join("cgdn", "pool.h"),
                 os.path.join("cgdn", "status.h")],
        define_macros=[("CGDN_DEBUG_BUILD", "1")] if DEBUG else [],
    )
    for name in ("cgdn._core", "cgdn._testing")
]

# debug and release C sources live apart, so switching never reuses a stale one
CYTHON_BUILD_DIR = os.path.join("build", "cython-debug" if DEBUG else "cython")


def _cython_key():
    """What the generated C follows from: Cython's version, the directives and the
    contents of cgdn's own Cython sources. Not times: pip's isolated build environments
    install Cython afresh for every build, so its own .pxd files always look newer than
    the generated C, and Cython's check would regenerate it (and the core be compiled
    again) at every install."""
    import Cython

    digest = hashlib.sha256(json.dumps([Cython.__version__, DIRECTIVES]).encode())
    for pattern in ("*.pyx", "*.pxd", "*.pxi"):
        for path in sorted(glob.glob(os.path.join("cgdn", pattern))):
            with open(path, "rb") as f:
                digest.update(path.encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()


def _generated_c(pyx):
    """Where Cython writes the C of ``pyx``."""
    return os.path.join(CYTHON_BUILD_DIR, pyx[:-len(".pyx")] + ".c")


_CYTHON_LOCK = threading.Lock()


def _cythonize(ext, key):
    """Generate the extension's C unless it exists and was made under the same key."""
    generated = _generated_c(ext.sources[0])
    stamp = generated + ".sha256"
    if os.path.exists(generated) and os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == key:
                return
    with _CYTHON_LOCK:   # Cython's compiler keeps global state: one module at a time
        cythonize([ext], compiler_directives=DIRECTIVES, build_dir=CYTHON_BUILD_DIR,
                  force=True)
    with open(stamp, "w") as f:
        f.write(key)


setup(
    ext_modules=extensions,
    cmdclass={"build_ext": BuildExt},
)
