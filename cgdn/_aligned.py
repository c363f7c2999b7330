"""Arrays whose rows start on a cache line, for the kernels' scratch and packed gamma."""
import numpy as np

# A cache line, in bytes (64 on every x86 and Arm core the kernels target). NumPy places
# arrays 16 bytes past one (or 32, 48): a vector load there straddles two lines.
LINE = 64


def aligned_empty(n_rows, n_cols, dtype):
    """An uninitialised (n_rows, >= n_cols) array whose rows start on a cache line."""
    dtype = np.dtype(dtype)
    per_line = LINE // dtype.itemsize
    n_cols = -(-n_cols // per_line) * per_line
    buf = np.empty(n_rows * n_cols * dtype.itemsize + LINE, dtype=np.uint8)
    start = -buf.ctypes.data % LINE
    return buf[start:start + n_rows * n_cols * dtype.itemsize].view(dtype).reshape(
        n_rows, n_cols)
