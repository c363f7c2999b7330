/* The core's worker threads. A call's work items (tiles, blocks of rows) are split into
 * contiguous shares, one per thread; each thread takes the items of its own share one at
 * a time, then those left in the others' shares. So a helper that is late or descheduled
 * never holds a call up: whoever runs does its share.
 *
 *   cgdn_pool_run(fn, ctx, n_items, n_threads)
 *
 * runs fn(ctx, item, slot) once for every item in [0, n_items), on the calling thread
 * (slot 0) and up to n_threads - 1 helpers (slots 1 ..), and returns when every item is
 * done. An item's slot says whose scratch it may use; which thread runs which item is
 * not fixed, so an item's result must not depend on it (cgdn's never do: every pixel is
 * computed alone, sums go per item in a fixed order).
 *
 * Why not OpenMP's parallel loop: an OpenMP region ends at a barrier every thread of the
 * team must reach. When other processes hold the cores, a team thread can wait a whole
 * scheduler time slice for a core while the others spin at that barrier (libgomp spins
 * for milliseconds before sleeping): on a 2-core machine with busy processes a default
 * call cost up to 5x its one-thread time. Here the caller waits only for an item already
 * started, and every wait is a short spin that yields the core to other ready threads,
 * then a sleep.
 *
 * One pool per process, grown on demand; one call at a time uses it (a call made while
 * another holds it runs on its calling thread alone, which is what the cores can give
 * then). After fork() the child starts with no helpers and makes new ones on its first
 * call. Helpers spin CGDN_POOL_IDLE_SPIN_NS for a next call (programs call cgdn in
 * loops with a little Python work between calls), then sleep until one comes.
 *
 * POSIX threads where they exist; elsewhere (Windows), or with CGDN_POOL_OPENMP defined
 * (how that path is tested here), the same contract on an OpenMP loop with dynamic
 * scheduling, or serial without OpenMP. */
#ifndef CGDN_POOL_H
#define CGDN_POOL_H

#include <stddef.h>

typedef void (*cgdn_item_fn)(void *ctx, ptrdiff_t item, int slot);

/* a caller spins this long for items started by others before it sleeps (and frees its
 * core for them); helpers spin CGDN_POOL_IDLE_SPIN_NS for a next call before they sleep
 * (waking a sleeping thread took milliseconds on virtual machines) */
#ifndef CGDN_POOL_SPIN_NS
#define CGDN_POOL_SPIN_NS 50000
#endif
#ifndef CGDN_POOL_YIELD_EVERY
#define CGDN_POOL_YIELD_EVERY 1
#endif
#ifndef CGDN_POOL_IDLE_SPIN_NS
#define CGDN_POOL_IDLE_SPIN_NS 2000000
#endif
/* at most this many threads per call (the caller and its helpers) */
#define CGDN_POOL_MAX_THREADS 256

#if !defined(_WIN32) && !defined(CGDN_POOL_OPENMP)

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h>
#define CGDN_POOL_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CGDN_POOL_RELAX() __asm__ __volatile__("yield")
#else
#define CGDN_POOL_RELAX() ((void)0)
#endif

#define CGDN_LOAD(p) __atomic_load_n(p, __ATOMIC_SEQ_CST)
#define CGDN_STORE(p, v) __atomic_store_n(p, v, __ATOMIC_SEQ_CST)
#define CGDN_ADD(p, v) __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST)

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* helpers sleep here between calls */
    pthread_cond_t finished;  /* a caller sleeps here for the items still running */
    int busy;                 /* 1 while a caller owns the pool */
    int n_helpers;            /* helpers started (slots 1 .. n_helpers) */
    int sleepers;             /* helpers asleep on `wake` */
    int waiting;              /* 1 while the caller sleeps on `finished` */
    int inside;               /* helpers reading the current call (see cgdn_pool_run) */
    uint64_t gen;             /* odd while a call is being set up, even once published */
    /* the current call, stable while gen is even and a helper is inside */
    cgdn_item_fn fn;
    void *ctx;
    ptrdiff_t n_items;
    int n_threads;
    ptrdiff_t done;           /* items finished */
} cgdn_pool_t;

/* Each thread's share of a call's items, [next, end), in a cache line of its own: a
 * thread takes its own items one at a time (its counter is not shared while it works),
 * then takes the items left in the others' shares, so a late or descheduled thread's
 * share is done by the others and it holds up at most the one item it started. */
typedef struct {
    ptrdiff_t next;
    ptrdiff_t end;
    char pad[64 - 2 * sizeof(ptrdiff_t)];
} cgdn_share_t;

static cgdn_pool_t cgdn_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                                PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0,
                                NULL, NULL, 0, 0, 0};
static cgdn_share_t cgdn_shares[CGDN_POOL_MAX_THREADS] __attribute__((aligned(64)));

/* counters for tests and diagnosis: calls published to the helpers, calls run alone
 * because another call held the pool or a helper was still inside the previous call,
 * and items the helpers ran */
static int64_t cgdn_pool_stats[4];
static pthread_once_t cgdn_pool_once = PTHREAD_ONCE_INIT;

static int64_t cgdn_pool_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Spin until *word != value (word given) or *count >= target (count given), at most
 * ns nanoseconds; whether it happened. Every few hundred nanoseconds the spinning
 * thread yields its core to any other thread ready to run there (a busy machine's other
 * work, the caller, a helper the caller waits for): a spinning thread must never take
 * the core from useful work. */
static int cgdn_pool_spin(const uint64_t *word, uint64_t value, const ptrdiff_t *count,
                          ptrdiff_t target, int64_t ns) {
    int64_t until = cgdn_pool_now_ns() + ns;
    unsigned checks = 0;
    for (;;) {
        int k;
        for (k = 0; k < 64; k++) {
            if (word ? CGDN_LOAD(word) != value : CGDN_LOAD(count) >= target) return 1;
            CGDN_POOL_RELAX();
        }
        if (cgdn_pool_now_ns() > until) return 0;
        if (++checks % CGDN_POOL_YIELD_EVERY == 0) sched_yield();
    }
}

static int cgdn_pool_spin_u64(const uint64_t *p, uint64_t value) {
    return cgdn_pool_spin(p, value, NULL, 0, CGDN_POOL_IDLE_SPIN_NS);
}

static int cgdn_pool_spin_done(const ptrdiff_t *p, ptrdiff_t target) {
    return cgdn_pool_spin(NULL, 0, p, target, CGDN_POOL_SPIN_NS);
}

/* take and run items of the current call (its own share first, then the items left in
 * the others'), until none is left; the items run */
static ptrdiff_t cgdn_pool_work(cgdn_item_fn fn, void *ctx, int n_threads, int slot) {
    ptrdiff_t item, ran = 0;
    int k;
    for (k = 0; k < n_threads; k++) {
        cgdn_share_t *share = &cgdn_shares[(slot + k) % n_threads];
        while ((item = __atomic_fetch_add(&share->next, 1, __ATOMIC_SEQ_CST)) < share->end) {
            fn(ctx, item, slot);
            ran++;
        }
    }
    return ran;
}

/* mark `ran` more items finished; the last one wakes a sleeping caller */
static void cgdn_pool_finish(ptrdiff_t ran, ptrdiff_t n_items) {
    if (ran && CGDN_ADD(&cgdn_pool.done, ran) == n_items && CGDN_LOAD(&cgdn_pool.waiting)) {
        pthread_mutex_lock(&cgdn_pool.lock);
        pthread_cond_broadcast(&cgdn_pool.finished);
        pthread_mutex_unlock(&cgdn_pool.lock);
    }
}

static void *cgdn_pool_helper(void *arg) {
    const int slot = (int)(intptr_t)arg;
    uint64_t seen = 0;
    int joined = 1;   /* whether this helper took part in the last call it saw */
    for (;;) {
        uint64_t gen;
        /* wait for a call published after the last one seen: spin (if this helper is
         * one the calls use), then sleep */
        if (!(joined && cgdn_pool_spin_u64(&cgdn_pool.gen, seen))) {
            pthread_mutex_lock(&cgdn_pool.lock);
            CGDN_ADD(&cgdn_pool.sleepers, 1);
            while (CGDN_LOAD(&cgdn_pool.gen) == seen)
                pthread_cond_wait(&cgdn_pool.wake, &cgdn_pool.lock);
            CGDN_ADD(&cgdn_pool.sleepers, -1);
            pthread_mutex_unlock(&cgdn_pool.lock);
        }
        /* enter, then read the call: while a helper is inside with an even gen, the
         * caller does not rewrite it (it marks gen odd, then waits for inside == 0) */
        CGDN_ADD(&cgdn_pool.inside, 1);
        gen = CGDN_LOAD(&cgdn_pool.gen);
        if (!(gen & 1)) {
            seen = gen;
            joined = slot < cgdn_pool.n_threads;
            if (joined) {
                ptrdiff_t ran = cgdn_pool_work(cgdn_pool.fn, cgdn_pool.ctx,
                                               cgdn_pool.n_threads, slot);
                __atomic_add_fetch(&cgdn_pool_stats[3], (int64_t)ran, __ATOMIC_RELAXED);
                cgdn_pool_finish(ran, cgdn_pool.n_items);
            }
        }
        CGDN_ADD(&cgdn_pool.inside, -1);
        if (gen & 1) {   /* a call is being set up: wait until it is published */
            while (CGDN_LOAD(&cgdn_pool.gen) == gen) CGDN_POOL_RELAX();
        }
    }
    return NULL;
}

/* after fork(), in the child: no helpers exist; start again from an empty pool */
static void cgdn_pool_after_fork(void) {
    pthread_mutex_init(&cgdn_pool.lock, NULL);
    pthread_cond_init(&cgdn_pool.wake, NULL);
    pthread_cond_init(&cgdn_pool.finished, NULL);
    cgdn_pool.busy = cgdn_pool.n_helpers = cgdn_pool.sleepers = 0;
    cgdn_pool.waiting = cgdn_pool.inside = 0;
    cgdn_pool.gen = 0;
}

static void cgdn_pool_init(void) {
    pthread_atfork(NULL, NULL, cgdn_pool_after_fork);
}

/* helpers up to slot n_threads - 1 (fewer if the system refuses threads); how many
 * threads the call can use */
static int cgdn_pool_grow(int n_threads) {
    while (cgdn_pool.n_helpers + 1 < n_threads) {
        pthread_t thread;
        pthread_attr_t attr;
        int failed;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        failed = pthread_create(&thread, &attr, cgdn_pool_helper,
                                (void *)(intptr_t)(cgdn_pool.n_helpers + 1));
        pthread_attr_destroy(&attr);
        if (failed) break;
        cgdn_pool.n_helpers++;
    }
    return cgdn_pool.n_helpers + 1 < n_threads ? cgdn_pool.n_helpers + 1 : n_threads;
}

static void cgdn_pool_serial(cgdn_item_fn fn, void *ctx, ptrdiff_t n_items) {
    ptrdiff_t item;
    for (item = 0; item < n_items; item++) fn(ctx, item, 0);
}

static void cgdn_pool_run(cgdn_item_fn fn, void *ctx, ptrdiff_t n_items, int n_threads) {
    uint64_t gen;
    int expected = 0;
    if (n_threads > CGDN_POOL_MAX_THREADS) n_threads = CGDN_POOL_MAX_THREADS;
    if ((ptrdiff_t)n_threads > n_items) n_threads = (int)n_items;
    if (n_threads <= 1
            || !__atomic_compare_exchange_n(&cgdn_pool.busy, &expected, 1, 0,
                                            __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        if (n_threads > 1) __atomic_add_fetch(&cgdn_pool_stats[1], 1, __ATOMIC_RELAXED);
        cgdn_pool_serial(fn, ctx, n_items);   /* one thread, or another call has the pool */
        return;
    }
    pthread_once(&cgdn_pool_once, cgdn_pool_init);
    n_threads = cgdn_pool_grow(n_threads);
    /* set the call up: gen odd, then no helper inside the previous call */
    gen = CGDN_LOAD(&cgdn_pool.gen);
    CGDN_STORE(&cgdn_pool.gen, gen + 1);
    {
        int64_t until = cgdn_pool_now_ns() + CGDN_POOL_SPIN_NS;
        while (CGDN_LOAD(&cgdn_pool.inside) != 0) {
            if (cgdn_pool_now_ns() > until) {
                /* a helper was descheduled inside the previous call: do not wait for it */
                CGDN_STORE(&cgdn_pool.gen, gen);
                CGDN_STORE(&cgdn_pool.busy, 0);
                __atomic_add_fetch(&cgdn_pool_stats[2], 1, __ATOMIC_RELAXED);
                cgdn_pool_serial(fn, ctx, n_items);
                return;
            }
            CGDN_POOL_RELAX();
        }
    }
    cgdn_pool.fn = fn;
    cgdn_pool.ctx = ctx;
    cgdn_pool.n_items = n_items;
    cgdn_pool.n_threads = n_threads;
    {   /* contiguous shares, as a static schedule splits them */
        int k;
        for (k = 0; k < n_threads; k++) {
            cgdn_shares[k].next = n_items * k / n_threads;
            cgdn_shares[k].end = n_items * (k + 1) / n_threads;
        }
    }
    CGDN_STORE(&cgdn_pool.done, 0);
    CGDN_STORE(&cgdn_pool.gen, gen + 2);   /* published */
    __atomic_add_fetch(&cgdn_pool_stats[0], 1, __ATOMIC_RELAXED);
    if (CGDN_LOAD(&cgdn_pool.sleepers)) {
        pthread_mutex_lock(&cgdn_pool.lock);
        pthread_cond_broadcast(&cgdn_pool.wake);
        pthread_mutex_unlock(&cgdn_pool.lock);
    }
    /* the caller works too, then waits for the items others started: spin, then sleep */
    cgdn_pool_finish(cgdn_pool_work(fn, ctx, n_threads, 0), n_items);
    if (!cgdn_pool_spin_done(&cgdn_pool.done, n_items)) {
        pthread_mutex_lock(&cgdn_pool.lock);
        CGDN_STORE(&cgdn_pool.waiting, 1);
        while (CGDN_LOAD(&cgdn_pool.done) < n_items)
            pthread_cond_wait(&cgdn_pool.finished, &cgdn_pool.lock);
        CGDN_STORE(&cgdn_pool.waiting, 0);
        pthread_mutex_unlock(&cgdn_pool.lock);
    }
    CGDN_STORE(&cgdn_pool.busy, 0);
}

#else  /* an OpenMP loop with dynamic scheduling, or serial */

static int64_t cgdn_pool_stats[4];   /* not counted here */

#ifdef _OPENMP
#include <omp.h>
#endif

static void cgdn_pool_run(cgdn_item_fn fn, void *ctx, ptrdiff_t n_items, int n_threads) {
    ptrdiff_t start;
    if (n_threads > CGDN_POOL_MAX_THREADS) n_threads = CGDN_POOL_MAX_THREADS;
    if ((ptrdiff_t)n_threads > n_items) n_threads = (int)n_items;
    /* int loop counters (OpenMP 2.0, MSVC), in blocks below 2**30 items */
    for (start = 0; start < n_items; start += 0x40000000) {
        int i, count = (int)(n_items - start < 0x40000000 ? n_items - start : 0x40000000);
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads > 1 ? n_threads : 1)
#endif
        for (i = 0; i < count; i++) {
#ifdef _OPENMP
            fn(ctx, start + i, omp_get_thread_num());
#else
            fn(ctx, start + i, 0);
#endif
        }
    }
}

#endif
#endif
