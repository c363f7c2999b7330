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
        With ``mode='dicts'``: keys ``cgdn``, ``python``, ``numpy``, ``scipy``,
        ``threadpoolctl`` (versions), ``openmp`` (bool), ``debug_build`` (bool: built
        with ``CGDN_CYTHON_DEBUG=1``), ``isa`` (the kernel variant in use: 'avx512',
        'avx2' or 'baseline') and ``isa_available``, ``max_threads`` (int, the
        default ``num_threads``), ``small_channels`` (the largest channel count mixed
        without BLAS) and ``threadpools`` (``threadpoolctl.threadpool_info()``: the
        BLAS and OpenMP libraries loaded in this process).

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
    import scipy
    import threadpoolctl

    from cgdn import __version__, _isa
    from cgdn._isa import kernels as _kernels
    from cgdn._threads import _controller, effective_num_threads

    info = {
        "cgdn": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "threadpoolctl": threadpoolctl.__version__,
        "openmp": _kernels.openmp_enabled(),
        "debug_build": _kernels.DEBUG_BUILD,
        "isa": _kernels.ISA,
        "isa_available": _isa.available(),
        "max_threads": effective_num_threads(None),
        "small_channels": _kernels.SMALL_CHANNELS,
        "threadpools": _controller().info(),
    }
    if mode == "dicts":
        return info
    print(f"cgdn {info['cgdn']}")
    for key in ("python", "platform", "numpy", "scipy", "threadpoolctl"):
        print(f"  {key:<14} {info[key]}")
    print(f"  {'openmp':<14} {'on' if info['openmp'] else 'off (serial kernels)'}")
    print(f"  {'max_threads':<14} {info['max_threads']}")
    print(f"  {'debug_build':<14} {info['debug_build']} (Cython bounds checks)")
    print(f"  {'isa':<14} {info['isa']} (kernels in use; runnable here: "
          f"{', '.join(info['isa_available'])}; CGDN_ISA overrides)")
    print(f"  {'small_channels':<14} {info['small_channels']} (hand-mixed, no BLAS, up to here)")
    print("  threadpools (BLAS used for channel mixing: SciPy's)")
    for pool in info["threadpools"]:
        print(
            f"    {pool.get('user_api')}: {pool.get('internal_api')} "
            f"{pool.get('version')} threads={pool.get('num_threads')} "
            f"{pool.get('architecture', '')} {pool.get('filepath')}"
        )
    return None
