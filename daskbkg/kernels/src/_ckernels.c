/* daskbkg.kernels._ckernels: the compiled combine kernels, as a CPython extension.
 *
 * Arrays arrive through the buffer protocol (Py_buffer), not the NumPy C API: the
 * Python wrapper (daskbkg/kernels/compiled.py) already hands over C-contiguous native
 * float32/uint32/bool arrays and preallocated outputs, so the C side needs only their
 * addresses and byte lengths. NumPy is then neither a build dependency nor an ABI
 * constraint, and one wheel per Python version works with every NumPy release.
 *
 * Every check that can fail happens before the GIL is released; the loops themselves
 * cannot fail (their only allocation is made, and checked, before they start).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdlib.h>

#include "kernels.h"

static int check_len(const Py_buffer *view, Py_ssize_t count, Py_ssize_t itemsize,
                     const char *name)
{
    if (view->len != count * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, expected %zd", name,
                     view->len, count * itemsize);
        return -1;
    }
    return 0;
}

static int decode_mode(int mode, double sigma, long pass_limit, dbk_opts *o)
{
    if (pass_limit != DBK_UNLIMITED && pass_limit < 1) {
        PyErr_SetString(PyExc_ValueError, "pass_limit must be -1 or positive");
        return -1;
    }
    if (isnan(sigma)) {
        PyErr_SetString(PyExc_ValueError, "sigma must be a number, not NaN");
        return -1;
    }
    o->sigma = sigma;
    o->pass_limit = pass_limit;
    o->reject = (mode & DBK_MODE_REJECT) != 0;
    o->mad = (mode & DBK_MODE_MAD) != 0;
    return 0;
}

/* Run the literal kernel on every pixel (one scratch allocation); returns n_pix, or -1
 * if the scratch could not be allocated. */
static ptrdiff_t literal_tile(const dbk_tile *t, const dbk_opts *o)
{
    ptrdiff_t most = t->n_bkg > t->n_int ? t->n_bkg : t->n_int;
    double *mem = malloc(sizeof(double) * (size_t)(2 * (most + 1) + 2 * (t->n_bkg + 1)));
    if (!mem) return -1;
    dbk_literal_scratch s = {mem, mem + most + 1, mem + 2 * (most + 1),
                             mem + 2 * (most + 1) + t->n_bkg + 1};
    for (ptrdiff_t p = 0; p < t->n_pix; p++) dbk_literal_pixel(t, o, p, &s);
    free(mem);
    return t->n_pix;
}

PyDoc_STRVAR(combine_doc,
"combine(sci, err, dq, overlaps, n_bkg, n_int, n_pix, rateints, sigma, pass_limit,\n"
"        mode, empty_nan, none_nan, literal, out_sci, out_err, out_dq, out_n)\n"
"--\n\n"
"Combine one tile into the four preallocated outputs (see daskbkg/kernels/compiled.py).\n"
"Inputs are C-contiguous (N, P) or (N, T, P) float32/uint32 buffers, overlaps N bytes;\n"
"mode bit 0 is the reject-all policy, bit 1 the mad_std scale. literal=True runs the\n"
"Wirth-selection kernel on every pixel. Releases the GIL. Returns the number of pixels\n"
"computed by the literal algorithm (all of them with literal=True).");

static PyObject *combine(PyObject *self, PyObject *args)
{
    Py_buffer v[8];
    Py_ssize_t n_bkg, n_int, n_pix;
    int rateints, mode, empty_nan, none_nan, literal;
    double sigma;
    long pass_limit;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*nnnpdlipppw*w*w*w*:combine", &v[0], &v[1], &v[2],
                          &v[3], &n_bkg, &n_int, &n_pix, &rateints, &sigma, &pass_limit,
                          &mode, &empty_nan, &none_nan, &literal, &v[4], &v[5], &v[6],
                          &v[7]))
        return NULL;
    PyObject *result = NULL;
    dbk_opts o;
    ptrdiff_t status = 0;
    if (n_bkg < 0 || n_int < 0 || n_pix < 0 || (!rateints && n_int != 1)) {
        PyErr_SetString(PyExc_ValueError, "invalid tile dimensions");
        goto done;
    }
    Py_ssize_t n_in = n_bkg * n_int * n_pix;
    if (check_len(&v[0], n_in, 4, "sci") || check_len(&v[1], n_in, 4, "err")
        || check_len(&v[2], n_in, 4, "dq") || check_len(&v[3], n_bkg, 1, "overlaps")
        || check_len(&v[4], n_pix, 4, "out_sci") || check_len(&v[5], n_pix, 4, "out_err")
        || check_len(&v[6], n_pix, 4, "out_dq") || check_len(&v[7], n_pix, 4, "out_n")
        || decode_mode(mode, sigma, pass_limit, &o))
        goto done;
    o.empty_nan = empty_nan;
    o.none_nan = none_nan;
    dbk_tile t = {v[0].buf, v[1].buf, v[2].buf, v[3].buf, n_bkg, n_int, n_pix, rateints,
                  v[4].buf, v[5].buf, v[6].buf, v[7].buf};
    /* The sort-once path needs a finite, non-negative sigma (its bounds are then finite)
     * and the std scale; everything else is the literal algorithm. */
    int sorted = !literal && !o.mad && o.sigma >= 0.0 && o.sigma < INFINITY;
    Py_BEGIN_ALLOW_THREADS
    status = sorted ? dbk_sortonce_tile(&t, &o) : literal_tile(&t, &o);
    Py_END_ALLOW_THREADS
    if (status < 0) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyLong_FromSsize_t(status);
done:
    for (int i = 0; i < 8; i++) PyBuffer_Release(&v[i]);
    return result;
}

PyDoc_STRVAR(lane_bounds_doc,
"lane_bounds(values, sigma, pass_limit, mode)\n"
"--\n\n"
"Final clip bounds (lo, hi) of one lane of float64 values (a C-contiguous buffer),\n"
"non-finite values ignored, by the literal algorithm.");

static PyObject *lane_bounds(PyObject *self, PyObject *args)
{
    Py_buffer view;
    double sigma, lo = NAN, hi = NAN;
    long pass_limit;
    int mode;
    dbk_opts o;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*dli:lane_bounds", &view, &sigma, &pass_limit, &mode))
        return NULL;
    PyObject *result = NULL;
    if (view.len % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "values must hold float64 values");
        goto done;
    }
    if (decode_mode(mode, sigma, pass_limit, &o)) goto done;
    ptrdiff_t n = view.len / 8;
    double *buf = malloc(sizeof(double) * (size_t)(2 * n + 1));
    if (!buf) {
        PyErr_NoMemory();
        goto done;
    }
    const double *values = view.buf;
    ptrdiff_t m = 0;
    for (ptrdiff_t i = 0; i < n; i++)
        if (isfinite(values[i])) buf[m++] = values[i];
    dbk_literal_bounds(buf, m, &o, buf + n, &lo, &hi);
    free(buf);
    result = Py_BuildValue("dd", lo, hi);
done:
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(tolerance_doc,
"tolerance(m, sq, big, med, std, sigma)\n"
"--\n\n"
"The sort-once path's decision margin for one pass (docs/algorithm-exactness.md).");

static PyObject *tolerance(PyObject *self, PyObject *args)
{
    double m, sq, big, med, std, sigma;
    (void)self;
    if (!PyArg_ParseTuple(args, "dddddd:tolerance", &m, &sq, &big, &med, &std, &sigma))
        return NULL;
    return PyFloat_FromDouble(dbk_tolerance(m, sq, big, med, std, sigma));
}

static PyMethodDef methods[] = {
    {"combine", combine, METH_VARARGS, combine_doc},
    {"lane_bounds", lane_bounds, METH_VARARGS, lane_bounds_doc},
    {"tolerance", tolerance, METH_VARARGS, tolerance_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ckernels",
    "Compiled combine kernels of daskbkg (see daskbkg/kernels/compiled.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__ckernels(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "BLOCK", DBK_BLOCK)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
