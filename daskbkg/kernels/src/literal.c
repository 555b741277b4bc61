/* The literal clip (algorithm page A.9-A.11) and the per-pixel combination (A.7, A.13).
 *
 * A line-by-line transcription of daskbkg/kernels/clip.py: Wirth's selection reorders
 * the buffer exactly as there, so the sums of each pass add the same values in the same
 * order and every bound and output has the same bits. It serves the clip_scale="mad_std"
 * option, the pixels the sort-once path cannot decide, and lane_bounds().
 */
#include <math.h>

#include "kernels.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* astropy's mad_std factor, 1 / Phi^-1(3/4). */
static const double MAD_FACTOR = 1.482602218505602;

/* Wirth's k-th smallest of buf[0:n], reordering buf in place. */
static double select_kth(double *buf, ptrdiff_t n, ptrdiff_t k)
{
    ptrdiff_t lo_idx = 0, hi_idx = n - 1;
    while (lo_idx < hi_idx) {
        double pivot = buf[k];
        ptrdiff_t i = lo_idx, j = hi_idx;
        for (;;) {
            while (buf[i] < pivot) i++;
            while (pivot < buf[j]) j--;
            if (i <= j) {
                double tmp = buf[i];
                buf[i] = buf[j];
                buf[j] = tmp;
                i++;
                j--;
            }
            if (i > j) break;
        }
        if (j < k) lo_idx = i;
        if (k < i) hi_idx = j;
    }
    return buf[k];
}

/* Median by selection; an even n selects k = n/2 first, then k = n/2 - 1. */
static double median(double *buf, ptrdiff_t n)
{
    if (n % 2 == 1) return select_kth(buf, n, (n - 1) / 2);
    double upper = select_kth(buf, n, n / 2);
    double lower = select_kth(buf, n, n / 2 - 1);
    return 0.5 * (upper + lower);
}

static double std_about_mean(const double *buf, ptrdiff_t n)
{
    double total = 0.0, acc = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) total += buf[i];
    double mean = total / (double)n;
    for (ptrdiff_t i = 0; i < n; i++) {
        double d = mean - buf[i];
        acc += d * d;
    }
    return sqrt(acc / (double)n);
}

void dbk_literal_bounds(double *buf, ptrdiff_t n, const dbk_opts *o, double *dev,
                        double *lo, double *hi)
{
    long passes = 0;
    for (;;) {
        if (n == 0) {
            *lo = NAN;
            *hi = NAN;
            return;
        }
        double med = median(buf, n), std;
        if (o->mad) {
            for (ptrdiff_t i = 0; i < n; i++) dev[i] = fabs(buf[i] - med);
            std = median(dev, n) * MAD_FACTOR;
        } else {
            std = std_about_mean(buf, n);
        }
        double l = med - o->sigma * std, h = med + o->sigma * std;
        ptrdiff_t kept = 0;
        for (ptrdiff_t i = 0; i < n; i++) {
            double v = buf[i];
            if (l <= v && v <= h) buf[kept++] = v;
        }
        *lo = l;
        *hi = h;
        if (kept == n) return;                /* converged */
        if (kept == 0 && o->reject) return;   /* astropy >= 8 stops on an empty buffer */
        n = kept;
        passes++;
        if (o->pass_limit != DBK_UNLIMITED && passes >= o->pass_limit) return;
    }
}

/* Kept by the final bounds: finite and not outside them (NaN bounds reject nothing). */
static int kept_by(double x, double lo, double hi)
{
    return isfinite(x) && !(x < lo) && !(x > hi);
}

/* Clipped mean over integrations of background k at pixel p (algorithm page A.8), float32 sums. */
static double integration_mean(const dbk_tile *t, const float *a, int square, ptrdiff_t k,
                               ptrdiff_t p, const dbk_opts *o, dbk_literal_scratch *s)
{
    const float *lane = a + k * t->n_int * t->n_pix + p;
    ptrdiff_t n = 0;
    for (ptrdiff_t i = 0; i < t->n_int; i++) {
        float x = lane[i * t->n_pix];
        if (square) x = x * x;
        if (isfinite(x)) s->buf[n++] = (double)x;
    }
    double lo, hi;
    dbk_literal_bounds(s->buf, n, o, s->dev, &lo, &hi);
    float sum = 0.0f;
    ptrdiff_t count = 0;
    for (ptrdiff_t i = 0; i < t->n_int; i++) {
        float x = lane[i * t->n_pix];
        if (square) x = x * x;
        if (kept_by((double)x, lo, hi)) {
            sum = sum + x;
            count++;
        }
    }
    if (count == 0) return o->empty_nan ? NAN : 0.0;
    return (double)sum / (double)count;
}

void dbk_literal_pixel(const dbk_tile *t, const dbk_opts *o, ptrdiff_t p,
                       dbk_literal_scratch *s)
{
    uint32_t q = 0;
    for (ptrdiff_t k = 0; k < t->n_bkg; k++) {
        if (!t->overlaps[k]) {  /* D = E = NaN, DQ ignored (algorithm page A.7) */
            s->d[k] = NAN;
            s->e[k] = NAN;
            continue;
        }
        ptrdiff_t base = k * t->n_int * t->n_pix + p;
        for (ptrdiff_t i = 0; i < t->n_int; i++) q |= t->dq[base + i * t->n_pix];
        if (t->rateints) {
            s->d[k] = integration_mean(t, t->sci, 0, k, p, o, s);
            s->e[k] = integration_mean(t, t->err, 1, k, p, o, s);
        } else {
            float v = t->err[base];
            s->d[k] = (double)t->sci[base];
            s->e[k] = (double)(float)(v * v);
        }
    }
    ptrdiff_t n = 0;
    for (ptrdiff_t k = 0; k < t->n_bkg; k++)
        if (isfinite(s->d[k])) s->buf[n++] = s->d[k];
    double lo, hi;
    dbk_literal_bounds(s->buf, n, o, s->dev, &lo, &hi);
    double total = 0.0, var_total = 0.0;
    int32_t count = 0;
    for (ptrdiff_t k = 0; k < t->n_bkg; k++) {  /* ascending k, as the reference */
        if (kept_by(s->d[k], lo, hi)) {
            total += s->d[k];
            var_total += s->e[k];
            count++;
        }
    }
    t->out_dq[p] = q;
    t->out_n[p] = count;
    if (count == 0) {
        t->out_sci[p] = o->none_nan ? NAN : 0.0f;
        t->out_err[p] = 0.0f;
    } else {
        t->out_sci[p] = (float)(total / count);
        t->out_err[p] = (float)(sqrt(var_total) / count);
    }
}
