/* Whole tiles through the sort-once path (port of the former numba kernels).
 *
 * Pixels go DBK_BLOCK at a time: the stack of a block is gathered into a small array
 * (one lane per column), all its lanes are sorted by one sorting network (vectorised
 * across lanes) and clipped together (blockclip_impl.h), then the kept samples are
 * averaged from the original values in stack order, as the reference does. Pixels with
 * an uncertain lane are recomputed by the literal code (literal.c) in the same call.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Wheels cannot assume AVX2; on x86-64 Linux with GCC the hot loops get an AVX2 clone
 * chosen at load time by the dynamic linker (ifunc), and a baseline SSE2 one. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(DBK_NO_CLONES)
#define DBK_HOT __attribute__((target_clones("avx2", "default")))
#else
#define DBK_HOT
#endif

/* Per-lane working rows of one block. */
typedef struct {
    double lo[DBK_BLOCK], hi[DBK_BLOCK], tol[DBK_BLOCK];
    double total[DBK_BLOCK], acc[DBK_BLOCK];
    int32_t counts[DBK_BLOCK];  /* int32: the double -> integer conversion vectorises */
    int32_t kept[DBK_BLOCK];
    uint32_t q[DBK_BLOCK];
    unsigned char uncertain[DBK_BLOCK];
} dbk_lanes;

static const double UNIT_ROUNDOFF = 1.1102230246251565e-16;  /* 2**-53 */

/* The decision margin of one pass, equations (6)-(8) of docs/algorithm-exactness.md:
 * m samples whose squared deviations from their mean sum to sq, largest magnitude big,
 * median med and scale std. With std = 0, d_lin is +inf and never chosen. */
static inline double tolerance_of(double m, double sq, double big, double med,
                                  double std, double sigma)
{
    const double u = UNIT_ROUNDOFF;
    double d_acc = 2.0 * (m + 3.0) * u * sq + 12.0 * m * m * m * u * u * big * big;
    double d_root = sqrt(d_acc / m), d_lin = d_acc / (m * std);
    double d_std = (std > 0.0) & (d_lin < d_root) ? d_lin : d_root;
    return 4.0 * (sigma * d_std + 4.0 * u * (fabs(med) + sigma * std));
}

double dbk_tolerance(double m, double sq, double big, double med, double std, double sigma)
{
    return tolerance_of(m, sq, big, med, std, sigma);
}

#define BT float
#define SFX f32
#include "blockclip_impl.h"
#undef BT
#undef SFX

#define BT double
#define SFX f64
#include "blockclip_impl.h"
#undef BT
#undef SFX

ptrdiff_t dbk_network(ptrdiff_t npad, int32_t *out)
{
    ptrdiff_t count = 0;
    for (ptrdiff_t p = 1; p < npad; p *= 2) {
        for (ptrdiff_t k = p; k >= 1; k /= 2) {
            for (ptrdiff_t j = k % p; j < npad - k; j += 2 * k) {
                ptrdiff_t width = k < npad - j - k ? k : npad - j - k;
                for (ptrdiff_t i = 0; i < width; i++) {
                    if ((i + j) / (2 * p) != (i + j + k) / (2 * p)) continue;
                    if (out) {
                        out[2 * count] = (int32_t)(i + j);
                        out[2 * count + 1] = (int32_t)(i + j + k);
                    }
                    count++;
                }
            }
        }
    }
    return count;
}

/* A sorting network for lanes of n samples: rows npad (power of two >= n). */
typedef struct {
    ptrdiff_t n, npad, n_pairs;
    int32_t *pairs;
} dbk_sorter;

static ptrdiff_t padded(ptrdiff_t n)
{
    ptrdiff_t npad = 1;
    while (npad < n) npad *= 2;
    return npad;
}

/* Everything one call needs, allocated once. */
typedef struct {
    dbk_lanes lanes;
    dbk_sorter by_int, by_bkg;      /* networks over integrations and over backgrounds */
    float *buf32;                   /* (npad, BLOCK) lanes of float samples */
    double *buf64;                  /* (npad_bkg, BLOCK) lanes of per-background means */
    float *squares;                 /* (N, BLOCK) float32 ERR² of a rate block */
    double *d, *e;                  /* (N, BLOCK) rateints clipped integration means */
    float *int_sum;                 /* (BLOCK,) float32 integration sums */
    dbk_literal_scratch lit;
} dbk_work;

static void *take(char **cursor, size_t bytes)
{
    void *p = *cursor;
    *cursor += (bytes + 63) & ~(size_t)63;
    return p;
}

/* One allocation for the whole call; returns the block to free (NULL on failure). */
static void *work_alloc(dbk_work *w, const dbk_tile *t)
{
    ptrdiff_t n_bkg = t->n_bkg, n_int = t->rateints ? t->n_int : 0;
    ptrdiff_t rows32 = t->rateints ? n_int : n_bkg, most = n_bkg > n_int ? n_bkg : n_int;
    w->by_int.n = rows32;
    w->by_int.npad = padded(rows32);
    w->by_int.n_pairs = dbk_network(w->by_int.npad, NULL);
    w->by_bkg.n = n_bkg;
    w->by_bkg.npad = padded(n_bkg);
    w->by_bkg.n_pairs = dbk_network(w->by_bkg.npad, NULL);
    size_t blk = DBK_BLOCK, nb = (size_t)n_bkg, np = (size_t)(most > 0 ? most : 1);
    size_t sizes[] = {
        2 * (size_t)w->by_int.n_pairs * 4, 2 * (size_t)w->by_bkg.n_pairs * 4,
        (size_t)w->by_int.npad * blk * 4, (size_t)w->by_bkg.npad * blk * 8,
        nb * blk * 4, nb * blk * 8, nb * blk * 8, blk * 4,
        np * 8, np * 8, (nb ? nb : 1) * 8, (nb ? nb : 1) * 8,
    };
    size_t total = 64;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += sizes[i] + 64;
    void *block = malloc(total);
    if (!block) return NULL;
    char *cursor = (char *)(((uintptr_t)block + 63) & ~(uintptr_t)63);
    w->by_int.pairs = take(&cursor, sizes[0]);
    w->by_bkg.pairs = take(&cursor, sizes[1]);
    w->buf32 = take(&cursor, sizes[2]);
    w->buf64 = take(&cursor, sizes[3]);
    w->squares = take(&cursor, sizes[4]);
    w->d = take(&cursor, sizes[5]);
    w->e = take(&cursor, sizes[6]);
    w->int_sum = take(&cursor, sizes[7]);
    w->lit.buf = take(&cursor, sizes[8]);
    w->lit.dev = take(&cursor, sizes[9]);
    w->lit.d = take(&cursor, sizes[10]);
    w->lit.e = take(&cursor, sizes[11]);
    dbk_network(w->by_int.npad, w->by_int.pairs);
    dbk_network(w->by_bkg.npad, w->by_bkg.pairs);
    for (size_t i = 0; i < (size_t)w->by_int.npad * blk; i++) w->buf32[i] = INFINITY;
    for (size_t i = 0; i < (size_t)w->by_bkg.npad * blk; i++) w->buf64[i] = INFINITY;
    return block;
}

/* Write the block's combined values (algorithm page A.13) to pixels p0 .. p0+nb-1. */
static void write_block(const dbk_tile *t, const dbk_opts *o, const dbk_lanes *w,
                        ptrdiff_t p0, int nb)
{
    for (int b = 0; b < nb; b++) {
        ptrdiff_t p = p0 + b;
        int32_t count = w->kept[b];
        if (count == 0) {
            t->out_sci[p] = o->none_nan ? NAN : 0.0f;
            t->out_err[p] = 0.0f;
        } else {
            t->out_sci[p] = (float)(w->total[b] / count);
            t->out_err[p] = (float)(sqrt(w->acc[b]) / count);
        }
        t->out_dq[p] = w->q[b];
        t->out_n[p] = count;
    }
}

/* Flag (in w->uncertain) the lanes the last clip could not decide. */
static void flag_uncertain(dbk_lanes *w, ptrdiff_t n_uncertain)
{
    if (n_uncertain == 0) return;
    for (int b = 0; b < DBK_BLOCK; b++) w->uncertain[b] |= isnan(w->lo[b]) ? 1 : 0;
}

/* Fill row `row` of a float block with a[0:nb] (non-finite as +inf, squared if asked);
 * columns nb.. are +inf. */
static DBK_HOT void gather_f32(float *DBK_RESTRICT row, const float *DBK_RESTRICT a, int nb,
                               int square)
{
    for (int b = 0; b < nb; b++) {
        float x = a[b];
        if (square) x = x * x;
        row[b] = fabsf(x) < INFINITY ? x : INFINITY;
    }
    for (int b = nb; b < DBK_BLOCK; b++) row[b] = INFINITY;
}

static DBK_HOT void rate_block(const dbk_tile *t, const dbk_opts *o, dbk_work *w, ptrdiff_t p0,
                               int nb)
{
    dbk_lanes *l = &w->lanes;
    for (int b = 0; b < nb; b++) l->q[b] = 0;
    for (ptrdiff_t k = 0; k < t->n_bkg; k++) {
        float *row = w->buf32 + k * DBK_BLOCK, *sq = w->squares + k * DBK_BLOCK;
        if (!t->overlaps[k]) {  /* a NaN lane: never kept, DQ ignored */
            for (int b = 0; b < DBK_BLOCK; b++) row[b] = INFINITY;
            continue;
        }
        const float *err = t->err + k * t->n_pix + p0;
        const uint32_t *dq = t->dq + k * t->n_pix + p0;
        gather_f32(row, t->sci + k * t->n_pix + p0, nb, 0);
        for (int b = 0; b < nb; b++) {
            sq[b] = err[b] * err[b];
            l->q[b] |= dq[b];
        }
    }
    flag_uncertain(l, bounds_f32(w->buf32, t->n_bkg, w->by_bkg.pairs, w->by_bkg.n_pairs, o, l));
    accumulate_f32(t->sci + p0, t->n_pix, w->squares, t->overlaps, t->n_bkg, nb, l);
}

/* Clipped integration means (algorithm page A.8) of background k, plane SCI or float32 ERR², for
 * the block's lanes, into out[0:nb]. */
static DBK_HOT void integration_means(const dbk_tile *t, const dbk_opts *o, dbk_work *w,
                                      ptrdiff_t k, int square, ptrdiff_t p0, int nb,
                                      double *out)
{
    dbk_lanes *l = &w->lanes;
    const float *a = (square ? t->err : t->sci) + k * t->n_int * t->n_pix + p0;
    for (ptrdiff_t i = 0; i < t->n_int; i++)
        gather_f32(w->buf32 + i * DBK_BLOCK, a + i * t->n_pix, nb, square);
    flag_uncertain(l, bounds_f32(w->buf32, t->n_int, w->by_int.pairs, w->by_int.n_pairs, o, l));
    float *DBK_RESTRICT sum = w->int_sum;
    for (int b = 0; b < nb; b++) sum[b] = 0.0f;
    const double *DBK_RESTRICT lo = l->lo, *DBK_RESTRICT hi = l->hi;
    double *DBK_RESTRICT count = l->total;
    for (int b = 0; b < nb; b++) count[b] = 0.0;
    for (ptrdiff_t i = 0; i < t->n_int; i++) {  /* float32 sums in integration order */
        const float *DBK_RESTRICT row = a + i * t->n_pix;
        for (int b = 0; b < nb; b++) {  /* vectorisable shape, see accumulate_f32 */
            float x = row[b];
            x = square ? x * x : x;
            double xd = (double)x, low = lo[b], high = hi[b];
            int keep = (xd >= low) & (xd <= high) & (fabs(xd) < INFINITY);
            float add = keep ? x : 0.0f;
            double one = keep ? 1.0 : 0.0;
            sum[b] = sum[b] + add;
            count[b] += one;
        }
    }
    for (int b = 0; b < nb; b++) {
        if (count[b] == 0.0) out[b] = o->empty_nan ? NAN : 0.0;
        else out[b] = (double)sum[b] / count[b];
    }
}

static DBK_HOT void rateints_block(const dbk_tile *t, const dbk_opts *o, dbk_work *w,
                                   ptrdiff_t p0, int nb)
{
    dbk_lanes *l = &w->lanes;
    for (int b = 0; b < nb; b++) l->q[b] = 0;
    for (ptrdiff_t k = 0; k < t->n_bkg; k++) {
        double *d = w->d + k * DBK_BLOCK, *e = w->e + k * DBK_BLOCK;
        if (!t->overlaps[k]) {
            for (int b = 0; b < nb; b++) d[b] = e[b] = NAN;
            continue;
        }
        const uint32_t *dq = t->dq + k * t->n_int * t->n_pix + p0;
        for (ptrdiff_t i = 0; i < t->n_int; i++)
            for (int b = 0; b < nb; b++) l->q[b] |= dq[i * t->n_pix + b];
        integration_means(t, o, w, k, 0, p0, nb, d);
        integration_means(t, o, w, k, 1, p0, nb, e);
    }
    for (ptrdiff_t k = 0; k < t->n_bkg; k++) {
        double *row = w->buf64 + k * DBK_BLOCK;
        const double *d = w->d + k * DBK_BLOCK;
        for (int b = 0; b < nb; b++) row[b] = fabs(d[b]) < INFINITY ? d[b] : INFINITY;
        for (int b = nb; b < DBK_BLOCK; b++) row[b] = INFINITY;
    }
    flag_uncertain(l, bounds_f64(w->buf64, t->n_bkg, w->by_bkg.pairs, w->by_bkg.n_pairs, o, l));
    accumulate_f64(w->d, DBK_BLOCK, w->e, t->overlaps, t->n_bkg, nb, l);
}

ptrdiff_t dbk_sortonce_tile(const dbk_tile *t, const dbk_opts *o)
{
    dbk_work *w = malloc(sizeof *w);
    if (!w) return -1;
    void *block = work_alloc(w, t);
    if (!block) {
        free(w);
        return -1;
    }
    ptrdiff_t n_literal = 0;
    for (ptrdiff_t p0 = 0; p0 < t->n_pix; p0 += DBK_BLOCK) {
        int nb = (int)(t->n_pix - p0 < DBK_BLOCK ? t->n_pix - p0 : DBK_BLOCK);
        memset(w->lanes.uncertain, 0, sizeof w->lanes.uncertain);
        if (t->rateints) rateints_block(t, o, w, p0, nb);
        else rate_block(t, o, w, p0, nb);
        write_block(t, o, &w->lanes, p0, nb);
        for (int b = 0; b < nb; b++) {
            if (!w->lanes.uncertain[b]) continue;
            dbk_literal_pixel(t, o, p0 + b, &w->lit);
            n_literal++;
        }
    }
    free(block);
    free(w);
    return n_literal;
}
