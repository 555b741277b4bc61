/* daskbkg.io._readruns: read many byte runs of open files into one buffer, decoding
 * FITS's big-endian values on the way, in one call that releases the GIL.
 *
 * A background stack tile is N exposures x 3 extensions of contiguous runs. Read one
 * run at a time from Python, each read releases and retakes the GIL twice (the system
 * call, then the decoding copy); with the dask threads and the scheduler competing for
 * it, those hand-offs cost more than the copies (benchmarks/RESULTS.md). Here the whole
 * list is read with positional reads (pread; ReadFile with an offset on Windows), and
 * each run is decoded (byte swap, then an XOR that flips the sign bit of FITS's
 * pseudo-unsigned integers) while it is still in the CPU cache.
 *
 * Nothing here knows about FITS headers: the caller (daskbkg/io/fitsarray.py) computes
 * every offset and length and the decoding. Buffers arrive through the buffer protocol.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#ifdef _WIN32
#include <io.h>
#include <windows.h>
#else
#include <unistd.h>
#endif

#if defined(_MSC_VER)
#define RR_BSWAP16 _byteswap_ushort
#define RR_BSWAP32 _byteswap_ulong
#define RR_BSWAP64 _byteswap_uint64
#else
#define RR_BSWAP16 __builtin_bswap16
#define RR_BSWAP32 __builtin_bswap32
#define RR_BSWAP64 __builtin_bswap64
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define RR_HOT __attribute__((target_clones("avx2", "default")))
#else
#define RR_HOT
#endif

/* Read up to n bytes of fd at offset; returns the count (0 at end of file) or -1 with
 * errno set. */
static long long read_at(int fd, unsigned char *buf, size_t n, long long offset)
{
#ifdef _WIN32
    HANDLE h = (HANDLE)_get_osfhandle(fd);
    OVERLAPPED ov;
    DWORD got = 0, want = n > 0x40000000u ? 0x40000000u : (DWORD)n;
    if (h == INVALID_HANDLE_VALUE) {
        errno = EBADF;
        return -1;
    }
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)((unsigned long long)offset & 0xFFFFFFFFu);
    ov.OffsetHigh = (DWORD)((unsigned long long)offset >> 32);
    if (!ReadFile(h, buf, want, &got, &ov)) {
        if (GetLastError() == ERROR_HANDLE_EOF) return 0;
        errno = EIO;
        return -1;
    }
    return (long long)got;
#else
    ssize_t got;
    do {
        got = pread(fd, buf, n, (off_t)offset);
    } while (got < 0 && errno == EINTR);
    return (long long)got;
#endif
}

/* Byte-swap (if swap) and XOR with mask the n values of width itemsize at p. */
static RR_HOT void decode16(uint16_t *p, size_t n, int swap, uint16_t mask)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint16_t)((swap ? RR_BSWAP16(p[i]) : p[i]) ^ mask);
}

static RR_HOT void decode32(uint32_t *p, size_t n, int swap, uint32_t mask)
{
    for (size_t i = 0; i < n; i++) p[i] = (swap ? RR_BSWAP32(p[i]) : p[i]) ^ mask;
}

static RR_HOT void decode64(uint64_t *p, size_t n, int swap, uint64_t mask)
{
    for (size_t i = 0; i < n; i++) p[i] = (swap ? RR_BSWAP64(p[i]) : p[i]) ^ mask;
}

static void decode(unsigned char *p, size_t nbytes, int itemsize, int swap,
                   unsigned long long mask)
{
    switch (itemsize) {
    case 1:
        for (size_t i = 0; i < nbytes; i++) p[i] ^= (unsigned char)mask;
        break;
    case 2:
        decode16((uint16_t *)p, nbytes / 2, swap, (uint16_t)mask);
        break;
    case 4:
        decode32((uint32_t *)p, nbytes / 4, swap, (uint32_t)mask);
        break;
    default:
        decode64((uint64_t *)p, nbytes / 8, swap, (uint64_t)mask);
        break;
    }
}

PyDoc_STRVAR(read_runs_doc,
"read_runs(fds, offsets, lengths, dests, out, itemsize, swap, mask)\n"
"--\n\n"
"Read run i (lengths[i] bytes of descriptor fds[i] at offsets[i]) into out at byte\n"
"dests[i], then byte-swap its values of width itemsize (if swap) and XOR them with\n"
"mask. fds are int32, the other lists int64 buffers of equal length. Releases the GIL.\n"
"Returns (status, run, errno): status 0 when every run was read, 1 when run `run` met\n"
"the end of its file, 2 when reading it failed with `errno`.");

static PyObject *read_runs(PyObject *self, PyObject *args)
{
    Py_buffer fds, offsets, lengths, dests, out;
    int itemsize, swap;
    unsigned long long mask;
    int status = 0, error = 0;
    Py_ssize_t failed = -1;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*ipK:read_runs", &fds, &offsets, &lengths, &dests,
                          &out, &itemsize, &swap, &mask))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = fds.len / (Py_ssize_t)sizeof(int32_t);
    const int32_t *fd = fds.buf;
    const int64_t *off = offsets.buf, *len = lengths.buf, *dst = dests.buf;
    unsigned char *base = out.buf;
    if (itemsize != 1 && itemsize != 2 && itemsize != 4 && itemsize != 8) {
        PyErr_SetString(PyExc_ValueError, "itemsize must be 1, 2, 4 or 8");
        goto done;
    }
    if (fds.len != n * (Py_ssize_t)sizeof(int32_t)
        || offsets.len != n * (Py_ssize_t)sizeof(int64_t)
        || lengths.len != n * (Py_ssize_t)sizeof(int64_t)
        || dests.len != n * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "fds, offsets, lengths and dests differ in length");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (off[i] < 0 || len[i] < 0 || dst[i] < 0 || dst[i] > out.len - len[i]
            || len[i] % itemsize != 0 || ((uintptr_t)(base + dst[i])) % (uintptr_t)itemsize) {
            PyErr_Format(PyExc_ValueError, "run %zd does not fit the output buffer", i);
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && status == 0; i++) {
        long long got = 0;
        while (got < len[i]) {
            long long r = read_at(fd[i], base + dst[i] + got, (size_t)(len[i] - got),
                                  off[i] + got);
            if (r <= 0) {
                status = r == 0 ? 1 : 2;
                error = r == 0 ? 0 : errno;
                failed = i;
                break;
            }
            got += r;
        }
        if (status == 0 && (swap || mask))
            decode(base + dst[i], (size_t)len[i], itemsize, swap && itemsize > 1, mask);
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("ini", status, failed, error);
done:
    PyBuffer_Release(&fds);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&lengths);
    PyBuffer_Release(&dests);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"read_runs", read_runs, METH_VARARGS, read_runs_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_readruns",
    "Positional reads of many byte runs into one buffer, decoded on the way (GIL released).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__readruns(void)
{
    return PyModule_Create(&module);
}
