"""Build script: the extension list, the OpenMP probe and the Cython directives.

Everything else (metadata, dependencies) lives in pyproject.toml.

Environment switches
--------------------
CGDN_CYTHON_DEBUG=1
    Compile the kernels with ``boundscheck`` and ``initializedcheck`` on.
CGDN_DISABLE_OPENMP=1
    Build serial kernels even when the compiler supports OpenMP.
"""
import glob
import os
import platform
import sys
import tempfile
import textwrap
import warnings

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("CGDN_CYTHON_DEBUG", "0") == "1"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

# -fno-math-errno lets gcc vectorize sqrt (measured 1.4-2.4x faster kernels); it is not
# -ffast-math, which changes results and the process's floating-point state.
BASE_COMPILE_ARGS = ["-O3", "-fno-math-errno"]

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


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        # Always recompile: a debug and a release build share the output path, and a
        # timestamp check would keep whichever was built last.
        self.force = True
        # The ISA variants are independent modules: compile them side by side.
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        is_msvc = self.compiler.compiler_type == "msvc"
        flags = _openmp_flags(self.compiler)
        if flags is None:
            warnings.warn(
                "cgdn: OpenMP was not found (or CGDN_DISABLE_OPENMP=1); building serial kernels. "
                "cgdn.show_config() will report OpenMP off.",
                stacklevel=1,
            )
            flags = ([], [])
        kept = []
        for ext in self.extensions:
            isa_flags = ext.extra_compile_args
            if isa_flags and (is_msvc or not _compiles_with(self.compiler, isa_flags)):
                warnings.warn(f"cgdn: the compiler cannot build {ext.name}; skipped",
                              stacklevel=1)
                continue
            ext.extra_compile_args = ([] if is_msvc else BASE_COMPILE_ARGS) + isa_flags
            ext.extra_compile_args += flags[0]
            ext.extra_link_args += flags[1]
            kept.append(ext)
        self.extensions = kept
        super().build_extensions()


# One kernel body (cgdn/_kernels_impl.pxi + cgdn/simd/), one extension module per
# instruction set; cgdn._isa picks the best one the CPU supports at import. The baseline
# module has no -m flags: SSE2 on x86-64, NEON on aarch64. Never -march=native.
ISA_VARIANTS = {
    "cgdn._kernels": [],
    "cgdn._kernels_avx2": ["-mavx2", "-mfma"],
    "cgdn._kernels_avx512": ["-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq", "-mavx2",
                             "-mfma", "-mprefer-vector-width=512"],
}
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
# For maintainers' checks only (tools/check_wide.sh): AVX-512's blockings in portable C,
# runnable on any CPU as the variant "wide". Not in wheels. -O1: gcc took minutes per
# kernel family at -O3 on 64-byte generic vectors (seconds at -O1).
WIDE_EMULATION = os.environ.get("CGDN_WIDE_EMULATION", "0") == "1"
if WIDE_EMULATION:
    ISA_VARIANTS["cgdn._kernels_wide"] = ["-DCGDN_EMULATE_WIDE", "-Wno-psabi", "-O1"]


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


SIMD_HEADERS = sorted(glob.glob(os.path.join("cgdn", "simd", "*.h")))

extensions = [
    Extension(
        name,
        [name.replace(".", "/") + ".pyx"],
        include_dirs=["cgdn"],
        depends=SIMD_HEADERS,
        define_macros=[("CGDN_DEBUG_BUILD", "1")] if DEBUG else [],
        extra_compile_args=list(flags),
    )
    for name, flags in ISA_VARIANTS.items()
    if X86 or not any(flag.startswith("-m") for flag in flags)   # -m: x86 instruction sets
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        # debug and release C sources live apart, so switching never reuses a stale one
        build_dir="build/cython-debug" if DEBUG else "build/cython",
    ),
    cmdclass={"build_ext": BuildExt},
)
