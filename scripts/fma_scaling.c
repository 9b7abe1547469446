/*
 * Two-thread scaling of pure FMA work on this machine, without gspc: is the second core
 * really there? Each sample times 2,000,000 iterations of 10 independent AVX2 FMA chains
 * on one thread, then the same on each of two threads at once, and prints
 * 2 x (one-thread time) / (two-thread time): 2.0 when the two threads get two whole cores.
 * No memory traffic, no pool, no gspc code: where this drops below 2, a layer's two-thread
 * speed-up drops with it (docs/threads.md, "The host's second core").
 *
 *   gcc -O2 -mavx2 -mfma -pthread scripts/fma_scaling.c -o target/fma_scaling
 *   chrt -f 1 target/fma_scaling [SAMPLES]      # default 400 samples (about 8 ms each)
 *
 * Prints one ratio per sample, then min, 5th percentile, median, max and how many samples
 * fell below 1.85 and 1.5.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ITERATIONS 2000000L

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* 10 independent FMA chains (more than the FMA latency times the units in flight). */
static void *work(void *out) {
    __m256 a[10];
    for (int i = 0; i < 10; i++) a[i] = _mm256_set1_ps((float)i);
    __m256 b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.001f);
    for (long k = 0; k < ITERATIONS; k++)
        for (int i = 0; i < 10; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    float s = 0, t[8];
    for (int i = 0; i < 10; i++) {
        _mm256_storeu_ps(t, a[i]);
        s += t[0];
    }
    *(volatile float *)out = s;
    return 0;
}

static double timed(int threads) {
    pthread_t th[2];
    float out[2];
    double t0 = now();
    for (int i = 0; i < threads; i++) pthread_create(&th[i], 0, work, &out[i]);
    for (int i = 0; i < threads; i++) pthread_join(th[i], 0);
    return now() - t0;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 400;
    if (n < 1) n = 1;
    double *r = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) {
        double one = timed(1), two = timed(2);
        r[i] = 2 * one / two;
        printf("%.2f ", r[i]);
        fflush(stdout);
    }
    qsort(r, n, sizeof(double), cmp);
    int below185 = 0, below15 = 0;
    for (int i = 0; i < n; i++) {
        below185 += r[i] < 1.85;
        below15 += r[i] < 1.5;
    }
    printf("\nsamples %d: min %.2f, p5 %.2f, median %.2f, max %.2f; below 1.85: %d, below 1.5: %d\n",
           n, r[0], r[n / 20], r[n / 2], r[n - 1], below185, below15);
    free(r);
    return 0;
}
