"""Build script: the extension list, the OpenMP probe and the Cython directives.

Everything else (metadata, dependencies) lives in pyproject.toml.

Environment switches
--------------------
CGDN_CYTHON_DEBUG=1
    Compile the kernels with ``boundscheck`` and ``initializedcheck`` on.
CGDN_DISABLE_OPENMP=1
    Build serial kernels even when the compiler supports OpenMP.
"""
import os
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

# -fno-math-errno lets gcc vectorize sqrt (see PERF-NOTES); it is not -ffast-math.
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
        for ext in self.extensions:
            if not is_msvc:
                ext.extra_compile_args = BASE_COMPILE_ARGS + ext.extra_compile_args
            ext.extra_compile_args += flags[0]
            ext.extra_link_args += flags[1]
        super().build_extensions()


extensions = [
    Extension(
        "cgdn._kernels",
        ["cgdn/_kernels.pyx"],
        define_macros=[("CGDN_DEBUG_BUILD", "1")] if DEBUG else [],
    ),
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
