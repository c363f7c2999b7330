/* CPU features, for picking a kernel variant at import (compiled into the baseline
 * module only). GCC and Clang's builtins also check that the OS saves the wider
 * registers. Non-x86 CPUs report no x86 variant. */
#ifndef CGDN_CPU_H
#define CGDN_CPU_H

#include <string.h>

static int cgdn_cpu_supports(const char *isa) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (strcmp(isa, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (strcmp(isa, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)isa;
#endif
    return 0;
}

#endif /* CGDN_CPU_H */
