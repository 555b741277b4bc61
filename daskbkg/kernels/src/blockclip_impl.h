/* The sort-once clip of a block of DBK_BLOCK lanes, and the mean of their kept samples.
 *
 * Included twice by sortonce.c, with BT the lane type (float for rate tiles and the
 * integrations of rateints tiles, double for the per-background means of rateints
 * tiles) and SFX the suffix of the function names. Sorting float lanes as float halves
 * the memory traffic and doubles the lanes per vector instruction.
 *
 * bounds_SFX() receives the lanes in the first n_vals rows of buf (one lane per column,
 * every non-finite sample replaced by +inf; rows n_vals..npad-1 hold +inf) and leaves
 * in w->lo / w->hi, for each lane, bounds whose keep/reject decisions (lo <= x <= hi for
 * finite x) are exactly those of the literal algorithm. NaN bounds of the literal
 * algorithm (nothing finite is rejected) come back as (-inf, +inf); NaN in w->lo marks
 * an uncertain lane, which the caller recomputes with dbk_literal_pixel. The argument
 * that this is exact is in docs/algorithm-exactness.md.
 */
#define DBK_CAT2(a, b) a##_##b
#define DBK_CAT(a, b) DBK_CAT2(a, b)

/* buf[i][b] as double: all arithmetic on samples is done in double. */
#define AT(i) ((double)buf[(ptrdiff_t)(i) * DBK_BLOCK + b])

/* Median of the sorted window [start, stop) of lane b (mean of the middle two if even).
 * For odd sizes both indices name the middle sample and 0.5 * (x + x) == x exactly (the
 * samples are at most float32-sized: no overflow), so no branch is needed. */
static inline double DBK_CAT(median, SFX)(const BT *buf, int b, ptrdiff_t start, ptrdiff_t stop)
{
    ptrdiff_t half = (stop - start) / 2, odd = (stop - start) % 2;
    return 0.5 * (AT(start + half) + AT(start + half - 1 + odd));
}

/* Sum of the window [start, stop) of lane b, or of its squared deviations from center.
 * Four accumulators break the dependency chain; any order obeys the error bound. */
static double DBK_CAT(window_sum, SFX)(const BT *buf, int b, ptrdiff_t start,
                                       ptrdiff_t stop, double center, int square)
{
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    ptrdiff_t i = start;
    for (; i + 4 <= stop; i += 4) {
        for (int j = 0; j < 4; j++) {
            double x = AT(i + j);
            s[j] += square ? (center - x) * (center - x) : x;
        }
    }
    for (; i < stop; i++) {
        double x = AT(i);
        s[0] += square ? (center - x) * (center - x) : x;
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* True if a sample next to either cut of [first, last) lies within eps of its bound. */
static int DBK_CAT(too_close, SFX)(const BT *buf, int b, ptrdiff_t first, ptrdiff_t last,
                                   ptrdiff_t start, ptrdiff_t stop, double low, double high,
                                   double eps)
{
    return (start > first && fabs(AT(start - 1) - low) <= eps)
           || (start < last && fabs(AT(start) - low) <= eps)
           || (stop > start && fabs(AT(stop - 1) - high) <= eps)
           || (stop < last && fabs(AT(stop) - high) <= eps);
}

/* The pass loop of lane b (n finite samples, sorted) from its first bounds in w: the
 * survivors of a pass are a window of the sorted lane. Writes the final bounds to
 * w->lo[b] / w->hi[b]; returns 1 (and lo NaN) when a decision is too close to call. */
static int DBK_CAT(shrink, SFX)(const BT *buf, int b, ptrdiff_t n, const dbk_opts *o,
                                dbk_lanes *w)
{
    double low = w->lo[b], high = w->hi[b], eps = w->tol[b];
    ptrdiff_t start = 0, stop = n;
    long passes = 0;
    int final = 0;  /* the last bounds are known: check them on the whole lane */
    for (;;) {
        ptrdiff_t first = final ? 0 : start, last = final ? n : stop;
        ptrdiff_t new_start = first, new_stop = last;
        while (new_start < last && AT(new_start) < low) new_start++;
        while (new_stop > new_start && AT(new_stop - 1) > high) new_stop--;
        if (DBK_CAT(too_close, SFX)(buf, b, first, last, new_start, new_stop, low, high,
                                    eps)) {
            w->lo[b] = NAN;
            return 1;
        }
        if (final) break;
        if (new_start == start && new_stop == stop) {  /* converged */
            final = 1;
            continue;
        }
        start = new_start;
        stop = new_stop;
        passes++;
        if ((start == stop && o->reject)
                || (o->pass_limit != DBK_UNLIMITED && passes >= o->pass_limit)) {
            final = 1;
            continue;
        }
        if (start == stop) {  /* everything rejected: NaN bounds keep every finite sample */
            low = -INFINITY;
            high = INFINITY;
            break;
        }
        ptrdiff_t m = stop - start;
        double med = DBK_CAT(median, SFX)(buf, b, start, stop), mean, sq;
        int constant = AT(start) == AT(stop - 1);
        if (constant) {
            /* Identical values: left-to-right sums are the literal algorithm's sums, in
             * any order, so these bounds are exact (no tolerance needed). */
            double v = AT(start);
            mean = 0.0;
            for (ptrdiff_t i = 0; i < m; i++) mean += v;
            mean = mean / (double)m;
            sq = 0.0;
            for (ptrdiff_t i = 0; i < m; i++) sq += (mean - v) * (mean - v);
        } else {
            mean = DBK_CAT(window_sum, SFX)(buf, b, start, stop, 0.0, 0) / (double)m;
            sq = DBK_CAT(window_sum, SFX)(buf, b, start, stop, mean, 1);
        }
        double std = sqrt(sq / (double)m);
        double big = fabs(AT(start)) > fabs(AT(stop - 1)) ? fabs(AT(start)) : fabs(AT(stop - 1));
        low = med - o->sigma * std;
        high = med + o->sigma * std;
        eps = constant ? -1.0 : tolerance_of((double)m, sq, big, med, std, o->sigma);
    }
    w->lo[b] = low;
    w->hi[b] = high;
    return 0;
}

/* First-pass bounds of every lane of the block as if each held n finite samples, with
 * contiguous loads so that it vectorises; lanes with fewer are redone by first_bounds. */
static inline void DBK_CAT(first_bounds_all, SFX)(const BT *buf, ptrdiff_t n, double sigma,
                                                  dbk_lanes *w)
{
    ptrdiff_t half = n / 2, odd = n % 2;
    const BT *DBK_RESTRICT upper = buf + half * DBK_BLOCK;
    const BT *DBK_RESTRICT lower = buf + (half - 1 + odd) * DBK_BLOCK;
    const BT *DBK_RESTRICT first = buf, *DBK_RESTRICT last = buf + (n - 1) * DBK_BLOCK;
    double *DBK_RESTRICT lo = w->lo, *DBK_RESTRICT hi = w->hi, *DBK_RESTRICT tol = w->tol;
    const double *DBK_RESTRICT acc = w->acc;
    for (int b = 0; b < DBK_BLOCK; b++) {
        double med = 0.5 * ((double)upper[b] + (double)lower[b]);
        double std = sqrt(acc[b] / (double)n);
        double a = fabs((double)first[b]), z = fabs((double)last[b]);
        double big = a > z ? a : z;
        lo[b] = med - sigma * std;
        hi[b] = med + sigma * std;
        tol[b] = tolerance_of((double)n, acc[b], big, med, std, sigma);
    }
}

/* Bounds and tolerance of the first pass of sorted lane b (n finite samples, whose
 * squared deviations from their mean sum to w->acc[b]). */
static inline void DBK_CAT(first_bounds, SFX)(const BT *buf, int b, ptrdiff_t n, double sigma,
                                              dbk_lanes *w)
{
    double med = DBK_CAT(median, SFX)(buf, b, 0, n);
    double std = sqrt(w->acc[b] / (double)n);
    double big = fabs(AT(0)) > fabs(AT(n - 1)) ? fabs(AT(0)) : fabs(AT(n - 1));
    w->lo[b] = med - sigma * std;
    w->hi[b] = med + sigma * std;
    w->tol[b] = tolerance_of((double)n, w->acc[b], big, med, std, sigma);
}

static DBK_HOT ptrdiff_t DBK_CAT(bounds, SFX)(BT *DBK_RESTRICT buf, ptrdiff_t n_vals,
                                              const int32_t *pairs, ptrdiff_t n_pairs,
                                              const dbk_opts *o, dbk_lanes *w)
{
    double *DBK_RESTRICT lo = w->lo, *DBK_RESTRICT hi = w->hi, *DBK_RESTRICT tol = w->tol;
    double *DBK_RESTRICT total = w->total, *DBK_RESTRICT acc = w->acc;
    int32_t *DBK_RESTRICT counts = w->counts;
    /* Sort every lane (+inf, the non-finite samples, last). */
    for (ptrdiff_t c = 0; c < n_pairs; c++) {
        BT *DBK_RESTRICT ri = buf + (ptrdiff_t)pairs[2 * c] * DBK_BLOCK;
        BT *DBK_RESTRICT rj = buf + (ptrdiff_t)pairs[2 * c + 1] * DBK_BLOCK;
        for (int b = 0; b < DBK_BLOCK; b++) {
            BT x = ri[b], y = rj[b];
            BT small = y < x ? y : x, large = y < x ? x : y;  /* a form gcc vectorises */
            ri[b] = small;
            rj[b] = large;
        }
    }
    /* First pass of all lanes at once: finite count and mean, then the squared
     * deviations, summed in sorted order. */
    for (int b = 0; b < DBK_BLOCK; b++) {
        total[b] = 0.0;
        acc[b] = 0.0;
    }
    for (ptrdiff_t k = 0; k < n_vals; k++) {
        const BT *row = buf + k * DBK_BLOCK;
        for (int b = 0; b < DBK_BLOCK; b++) {
            double x = (double)row[b];
            int finite = x < INFINITY;
            total[b] += finite ? x : 0.0;
            acc[b] += finite ? 1.0 : 0.0;
        }
    }
    for (int b = 0; b < DBK_BLOCK; b++) {
        counts[b] = (int32_t)acc[b];
        total[b] = total[b] / (acc[b] > 1.0 ? acc[b] : 1.0);
        acc[b] = 0.0;
    }
    for (ptrdiff_t k = 0; k < n_vals; k++) {
        const BT *row = buf + k * DBK_BLOCK;
        for (int b = 0; b < DBK_BLOCK; b++) {
            double x = (double)row[b];
            double d = total[b] - x;
            acc[b] += x < INFINITY ? d * d : 0.0;
        }
    }
    if (n_vals > 0) {  /* most lanes have no non-finite sample: all n_vals at once */
        DBK_CAT(first_bounds_all, SFX)(buf, n_vals, o->sigma, w);
        for (int b = 0; b < DBK_BLOCK; b++)  /* lanes without samples: set below */
            if (counts[b] > 0 && counts[b] != (int32_t)n_vals)
                DBK_CAT(first_bounds, SFX)(buf, b, counts[b], o->sigma, w);
    }
    /* Lanes with no sample outside the first bounds and extremes clear of them are
     * decided; total[] is reused as the count of samples outside. */
    for (int b = 0; b < DBK_BLOCK; b++) total[b] = 0.0;
    for (ptrdiff_t k = 0; k < n_vals; k++) {
        const BT *row = buf + k * DBK_BLOCK;
        for (int b = 0; b < DBK_BLOCK; b++) {
            double x = (double)row[b];
            int outside = (x < lo[b]) | ((x > hi[b]) & (x < INFINITY));
            total[b] += outside ? 1.0 : 0.0;
        }
    }
    ptrdiff_t n_uncertain = 0;
    for (int b = 0; b < DBK_BLOCK; b++) {
        ptrdiff_t n = counts[b];
        if (n == 0) {
            lo[b] = -INFINITY;
            hi[b] = INFINITY;
            continue;
        }
        double low_end = (double)buf[b], high_end = (double)buf[(n - 1) * DBK_BLOCK + b];
        if (low_end == high_end) continue;  /* constant lane: first bounds exact */
        if (total[b] == 0.0 && !(fabs(low_end - lo[b]) <= tol[b]
                                 || fabs(high_end - hi[b]) <= tol[b]))
            continue;
        if (DBK_CAT(shrink, SFX)(buf, b, n, o, w)) n_uncertain++;
    }
    return n_uncertain;
}

/* Add the kept samples of lanes[k][0:nb] (row stride `stride`) and their variances
 * var[k][0:nb] (stride DBK_BLOCK) into the block sums, in ascending k for every lane. */
static DBK_HOT void DBK_CAT(accumulate, SFX)(const BT *lanes, ptrdiff_t stride,
                                             const BT *var, const unsigned char *overlaps,
                                             ptrdiff_t n_bkg, int nb, dbk_lanes *w)
{
    const double *DBK_RESTRICT lo = w->lo, *DBK_RESTRICT hi = w->hi;
    double *DBK_RESTRICT total = w->total, *DBK_RESTRICT var_total = w->acc;
    double *DBK_RESTRICT count = w->tol;
    for (int b = 0; b < nb; b++) {
        total[b] = 0.0;
        var_total[b] = 0.0;
        count[b] = 0.0;
    }
    for (ptrdiff_t k = 0; k < n_bkg; k++) {
        if (!overlaps[k]) continue;  /* a NaN lane is never kept */
        const BT *DBK_RESTRICT lane = lanes + k * stride;
        const BT *DBK_RESTRICT v = var + k * DBK_BLOCK;
        /* Every load and select before the stores, and a double count: the shape gcc
         * if-converts and vectorises. Adding +0.0 leaves the +0.0-started sums as they
         * are. */
        for (int b = 0; b < nb; b++) {
            double x = (double)lane[b], xv = (double)v[b], l = lo[b], h = hi[b];
            int keep = (x >= l) & (x <= h) & (fabs(x) < INFINITY);
            double add = keep ? x : 0.0, add_var = keep ? xv : 0.0, one = keep ? 1.0 : 0.0;
            total[b] += add;
            var_total[b] += add_var;
            count[b] += one;
        }
    }
    for (int b = 0; b < nb; b++) w->kept[b] = (int32_t)count[b];
}

#undef AT
#undef DBK_CAT
#undef DBK_CAT2
