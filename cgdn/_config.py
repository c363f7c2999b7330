"""Build and runtime configuration report."""
import platform
import sys

import numpy as np


def show_config(mode="stdout"):
    """Report how cgdn was built and what it runs on.

    Parameters
    ----------
    mode : {'stdout', 'dicts'}, default 'stdout'
        Print a readable report, or return it as a dict.

    Returns
    -------
    dict or None
        With ``mode='dicts'``: keys ``cgdn``, ``python``, ``platform``, ``numpy``,
        ``threadpoolctl`` (versions), ``openmp`` (bool), ``debug_build`` (bool: built
        with ``CGDN_CYTHON_DEBUG=1``), ``isa`` (the kernel variant in use: 'avx512',
        'avx2', 'neon' or 'baseline') and ``isa_available``, ``vector`` (the variant's
        vector registers and float32 lanes, and the widest GEMM panel in vectors that
        its register blocking uses), ``max_threads`` (int, the default
        ``num_threads``) and ``threadpools`` (``threadpoolctl.threadpool_info()``: the
        OpenMP and BLAS libraries loaded in this process; the kernels call no BLAS).

    Raises
    ------
    ValueError
        If ``mode`` is not 'stdout' or 'dicts'.

    Examples
    --------
    >>> import cgdn
    >>> info = cgdn.show_config(mode="dicts")
    >>> info["isa"] in info["isa_available"]
    True
    >>> isinstance(info["openmp"], bool)
    True
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    import threadpoolctl

    from cgdn import _core, _isa
    from cgdn._version import __version__
    from cgdn._threads import _controller, effective_num_threads

    info = {
        "cgdn": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "threadpoolctl": threadpoolctl.__version__,
        "openmp": _core.openmp_enabled(),
        "debug_build": _core.DEBUG_BUILD,
        "isa": _isa.kernels.ISA,
        "isa_available": _isa.available(),
        "max_threads": effective_num_threads(None),
        "vector": {"registers": _isa.kernels.VECTOR_REGISTERS,
                   "float32_lanes": _isa.kernels.LANES["float32"],
                   "max_panel_vectors": _isa.kernels.MAX_PANEL_VECTORS},
        "threadpools": _controller().info(),
    }
    if mode == "dicts":
        return info
    print(f"cgdn {info['cgdn']}")
    for key in ("python", "platform", "numpy", "threadpoolctl"):
        print(f"  {key:<14} {info[key]}")
    print(f"  {'openmp':<14} {'on' if info['openmp'] else 'off (default: 1 thread)'}")
    print(f"  {'max_threads':<14} {info['max_threads']}")
    print(f"  {'debug_build':<14} {info['debug_build']} (Cython bounds checks)")
    print(f"  {'isa':<14} {info['isa']} (kernels in use; runnable here: "
          f"{', '.join(info['isa_available'])}; CGDN_ISA overrides)")
    vector = info["vector"]
    print(f"  {'vector':<14} {vector['registers']} registers x {vector['float32_lanes']} float32 "
          f"lanes; GEMM panels up to {vector['max_panel_vectors']} vectors")
    print("  threadpools (the kernels run on cgdn's own threads, as many as OpenMP's settings "
          "say by default; no BLAS runs inside them)")
    for pool in info["threadpools"]:
        print(
            f"    {pool.get('user_api')}: {pool.get('internal_api')} "
            f"{pool.get('version')} threads={pool.get('num_threads')} "
            f"{pool.get('architecture', '')} {pool.get('filepath')}"
        )
    return None
