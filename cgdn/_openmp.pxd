# OpenMP shim: cimport OpenMP functions from here, never from `openmp`, so a build
# without OpenMP still compiles (serial kernels, one thread).
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define CGDN_OPENMP_ENABLED 1
    #else
    #define CGDN_OPENMP_ENABLED 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    bint CGDN_OPENMP_ENABLED
    int omp_get_max_threads() noexcept nogil
