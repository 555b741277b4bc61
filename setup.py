"""Build of the compiled parts; metadata is in pyproject.toml.

* ``daskbkg.kernels._ckernels``: the combine kernels;
* ``daskbkg.io._readruns``: the positional reader of byte runs (no floating point).
"""

import sys

from setuptools import Extension, setup

SOURCES = ["_ckernels.c", "literal.c", "sortonce.c"]

if sys.platform == "win32":
    # MSVC: /fp:precise (its default) never contracts a*b+c into a fused multiply-add.
    FLAGS = ["/O2", "/fp:precise"]
else:
    # No contraction (the reference rounds every product), no -ffast-math, no -march:
    # a wheel runs on any CPU of its platform (see the AVX2 clones in sortonce.c).
    # -fno-trapping-math and -fno-math-errno change no result (no trap is ever enabled,
    # errno is never read); they let gcc if-convert and vectorise the lane loops.
    FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]

setup(
    ext_modules=[
        Extension(
            "daskbkg.kernels._ckernels",
            sources=[f"daskbkg/kernels/src/{name}" for name in SOURCES],
            depends=["daskbkg/kernels/src/kernels.h", "daskbkg/kernels/src/blockclip_impl.h"],
            extra_compile_args=FLAGS,
        ),
        Extension(
            "daskbkg.io._readruns",
            sources=["daskbkg/io/src/_readruns.c"],
            extra_compile_args=FLAGS,
        ),
    ]
)
