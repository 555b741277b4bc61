/* Shared declarations of the compiled combine kernels (see _ckernels.c for the module).
 *
 * Everything here is plain C99 on caller-owned memory: no Python object is touched, so
 * the functions run with the GIL released. Floating-point contraction must stay off
 * (setup.py passes -ffp-contract=off): the reference rounds every product and sum on
 * its own, and a fused multiply-add would change the last bit of a bound.
 */
#ifndef DASKBKG_KERNELS_H
#define DASKBKG_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef _MSC_VER
#define DBK_RESTRICT __restrict
#else
#define DBK_RESTRICT restrict
#endif

/* Lanes (pixels) clipped together by the sort-once path; each input row is read
 * BLOCK * 4 bytes at a time, long enough for the hardware prefetcher. */
#define DBK_BLOCK 256
#define DBK_UNLIMITED (-1L)
#define DBK_MODE_REJECT 1
#define DBK_MODE_MAD 2

/* Options of one call, decoded from the Python side's integers. */
typedef struct {
    double sigma;      /* clip threshold, both sides */
    long pass_limit;   /* DBK_UNLIMITED or a positive number of passes */
    int reject;        /* all_rejected == "reject" (astropy 8) */
    int mad;           /* scale == "mad_std" */
    int empty_nan;     /* rateints integration mean without valid sample is NaN */
    int none_nan;      /* SCI_bk of a pixel without surviving sample is NaN */
} dbk_opts;

/* One tile: C-contiguous inputs (N, P) or (N, T, P) and flat outputs (P,). */
typedef struct {
    const float *sci;
    const float *err;
    const uint32_t *dq;
    const unsigned char *overlaps;  /* N flags, 0 or 1 */
    ptrdiff_t n_bkg, n_int, n_pix;  /* n_int is 1 for a rate tile */
    int rateints;
    float *out_sci;
    float *out_err;
    uint32_t *out_dq;
    int32_t *out_n;
} dbk_tile;

/* Working memory of the literal (Wirth) path: one pixel at a time. */
typedef struct {
    double *buf;  /* max(N, T) values being clipped */
    double *dev;  /* max(N, T) absolute deviations (mad_std scale) */
    double *d;    /* N per-background values */
    double *e;    /* N per-background variances */
} dbk_literal_scratch;

/* literal.c: the algorithm of algorithm page A.9 exactly as the NumPy reference runs it. */
void dbk_literal_bounds(double *buf, ptrdiff_t n, const dbk_opts *o, double *dev,
                        double *lo, double *hi);
void dbk_literal_pixel(const dbk_tile *t, const dbk_opts *o, ptrdiff_t p,
                       dbk_literal_scratch *s);

/* sortonce.c: whole tiles through the sort-once path (uncertain pixels are redone by
 * dbk_literal_pixel). Returns the number of pixels redone, or -1 if its scratch could
 * not be allocated (nothing has been written then). */
ptrdiff_t dbk_sortonce_tile(const dbk_tile *t, const dbk_opts *o);

/* sortonce.c: bound on the distance between a pass's bounds and the literal
 * algorithm's, for a window of m samples whose squared deviations from their mean sum to
 * sq, largest magnitude big, median med and standard deviation std. Derivation:
 * docs/algorithm-exactness.md. */
double dbk_tolerance(double m, double sq, double big, double med, double std, double sigma);

/* Batcher's odd-even merge-sort network on npad (a power of two) rows: writes the
 * compare-exchange pairs to out (if not NULL) and returns their number. */
ptrdiff_t dbk_network(ptrdiff_t npad, int32_t *out);

#endif
