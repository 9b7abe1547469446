/*
 * An experiment for the next depthwise kernel, outside gspc: MobileNetV1's dw12 (512
 * channels, 3x3, stride 2, padding 1, 14x14 -> 7x7, NCHW) with two output rows in one
 * AVX-512 vector: lanes 0-6 are output row r, lanes 8-14 row r + 1. One masked load per
 * input row gives its columns -1..14 (lane 0 and lane 15 zero); the tap (kh, kw) of a row
 * pair is one vpermt2ps of the two input rows it reads (index 2j + kw in each half), with
 * the lanes whose column is over the padding zeroed by its mask; four row pairs a channel
 * keep four independent accumulators. No packing, no transposes, no scratch.
 *
 *   gcc -O3 -mavx512f -mavx512vl -mavx512dq scripts/dw_s2_pairs.c -o target/dw_s2_pairs
 *   chrt -f 1 target/dw_s2_pairs        # checks against a naive loop, then 5 timed rounds
 *
 * docs/depthwise.md ("Stride 2 on narrow rows: two output rows a vector") has the numbers.
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define C 512
#define H 14
#define W 14
#define OH 7
#define OW 7
#define PAIRS ((OH + 1) / 2)

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

/* The reference: one output at a time. */
static void naive(const float *x, const float *w, const float *b, float *y) {
    for (int c = 0; c < C; c++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float s = b[c];
                for (int kh = 0; kh < 3; kh++)
                    for (int kw = 0; kw < 3; kw++) {
                        int ih = 2 * oh + kh - 1, iw = 2 * ow + kw - 1;
                        if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                            s += x[(c * H + ih) * W + iw] * w[c * 9 + kh * 3 + kw];
                    }
                y[(c * OH + oh) * OW + ow] = s;
            }
}

__attribute__((noinline)) static void pairs(const float *x, const float *w, const float *b,
                                            float *y) {
    __m512i idx[3];
    __mmask16 mask[3];
    for (int kw = 0; kw < 3; kw++) {
        int t[16];
        unsigned m = 0;
        for (int j = 0; j < 8; j++) {
            t[j] = 2 * j + kw;           /* from the first row (lanes 0-15: columns -1..14) */
            t[8 + j] = 16 + 2 * j + kw;  /* from the second */
            int col = 2 * j + kw - 1;
            if (j < OW && col >= 0 && col < W) m |= (1u << j) | (1u << (8 + j));
        }
        idx[kw] = _mm512_loadu_si512(t);
        mask[kw] = (__mmask16)m;
    }
    const __mmask16 row_lanes = (__mmask16)(((1u << W) - 1) << 1);
    const __mmask8 out_lanes = (__mmask8)((1u << OW) - 1);
    for (int c = 0; c < C; c++) {
        const float *xc = x + c * H * W;
        float *yc = y + c * OH * OW;
        __m512 wv[9];
        for (int t = 0; t < 9; t++) wv[t] = _mm512_set1_ps(w[c * 9 + t]);
        /* Input rows -1..H, the two outside the plane zero. The load of row 0 starts one
         * value before the plane (masked off: no access). */
        __m512 rows[H + 3];
        rows[0] = _mm512_setzero_ps();
        for (int ih = 0; ih < H; ih++) rows[ih + 1] = _mm512_maskz_loadu_ps(row_lanes, xc + ih * W - 1);
        rows[H + 1] = _mm512_setzero_ps();
        rows[H + 2] = _mm512_setzero_ps();
        __m512 acc[PAIRS];
        for (int p = 0; p < PAIRS; p++) acc[p] = _mm512_set1_ps(b[c]);
        for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++)
                for (int p = 0; p < PAIRS; p++) {
                    __m512 a = rows[4 * p + kh], bb = rows[4 * p + kh + 2];
                    __m512 t = _mm512_maskz_permutex2var_ps(mask[kw], a, idx[kw], bb);
                    acc[p] = _mm512_fmadd_ps(t, wv[kh * 3 + kw], acc[p]);
                }
        for (int p = 0; p < PAIRS; p++) {
            _mm256_mask_storeu_ps(yc + 2 * p * OW, out_lanes, _mm512_castps512_ps256(acc[p]));
            if (2 * p + 1 < OH)
                _mm256_mask_storeu_ps(yc + (2 * p + 1) * OW, out_lanes, _mm512_extractf32x8_ps(acc[p], 1));
        }
    }
}

int main(void) {
    float *x = aligned_alloc(64, C * H * W * 4), *w = aligned_alloc(64, C * 9 * 4);
    float *b = aligned_alloc(64, C * 4), *y = aligned_alloc(64, C * OH * OW * 4);
    float *z = aligned_alloc(64, C * OH * OW * 4);
    srand(1);
    for (int i = 0; i < C * H * W; i++) x[i] = rand() / (float)RAND_MAX - 0.5f;
    for (int i = 0; i < C * 9; i++) w[i] = rand() / (float)RAND_MAX - 0.5f;
    for (int i = 0; i < C; i++) b[i] = rand() / (float)RAND_MAX;
    naive(x, w, b, z);
    pairs(x, w, b, y);
    double err = 0;
    for (int i = 0; i < C * OH * OW; i++) {
        double d = y[i] > z[i] ? y[i] - z[i] : z[i] - y[i];
        if (d > err) err = d;
    }
    printf("largest difference from the naive loop: %g\n", err);
    if (err > 1e-4) return 1;
    for (int round = 0; round < 5; round++) {
        int n = 2000;
        double t0 = now_ns();
        for (int i = 0; i < n; i++) pairs(x, w, b, y);
        printf("round %d: %.2f us\n", round, (now_ns() - t0) / n / 1e3);
    }
    return 0;
}
