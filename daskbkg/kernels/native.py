"""The compiled combine kernels as a plain shared library, called without numba.

Loading numba-compiled code costs about a quarter of a second in every process: numba
is imported, its typing and lowering registries are filled and its runtime is compiled,
before the cached machine code can run. That is a large part of a short job. So when
the kernels are warmed up (on installation, by ``daskbkg demo``, in the container
image), the very same compiled code is also written out as a shared library:
:mod:`.cdefs` gives the kernels C entry points, llvmlite turns the optimised LLVM module
numba produced into an object file for this CPU, and the system C compiler links it.
At run time :mod:`ctypes` loads the library, which releases the GIL around each call
just as ``nogil=True`` does, and numba is never imported.

The library is keyed by the kernels' source code and by this CPU (model and feature
flags), lives next to the numba cache, and is only used on Linux. Nothing is lost
without it: the kernels then run through numba exactly as before. Set
``DASKBKG_NATIVE=0`` to keep it out of the way.

The compiled code allocates nothing (:mod:`.workspace`) and cannot raise
(``error_model="numpy"``), so the library needs nothing beyond the C library; a build
whose module declares any other external function is refused.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["NativeKernels", "RATE_ARGS", "RATEINTS_ARGS", "build", "cache_root", "library_dir",
           "load", "source_digest"]

_ENTRIES = {"rate": "daskbkg_rate", "rateints": "daskbkg_rateints"}
#: External functions the object code may call: the C and maths libraries, LLVM
#: intrinsics.
_ALLOWED_EXTERNALS = ("memset", "memcpy", "memmove", "sqrt", "llvm.")
#: Arguments of the two C entry points, ``(name, kind)`` in order; a kind ending in
#: ``*`` is a pointer to that element type. :mod:`.cdefs` turns them into numba types.
_OUTPUTS = [("out_sci", "f4*"), ("out_err", "f4*"), ("out_dq", "u4*"), ("out_n", "i4*"),
            ("uncertain", "b1*")]
_OPTIONS = [("sigma", "f8"), ("pass_limit", "i8"), ("reject", "i8")]
_WORK = [("sums", "f8*"), ("q", "u4*"), ("count", "i4*"), ("squares", "f4*")]


def _scratch_spec(suffix: str, kind: str) -> list:
    """Arguments of one clip scratch (:func:`.workspace.block_scratch`) of ``kind`` lanes."""
    return [(f"buf{suffix}", kind), (f"npad{suffix}", "i8"), (f"pairs{suffix}", "i4*"),
            (f"npairs{suffix}", "i8"), (f"stats{suffix}", "f8*"), (f"counts{suffix}", "i8*")]


RATE_ARGS = ([("sci", "f4*"), ("err", "f4*"), ("dq", "u4*"), ("overlaps", "b1*"),
              ("n_bkg", "i8"), ("n_pix", "i8")] + _OPTIONS + [("none_nan", "b1")]
             + _scratch_spec("", "f4*") + _WORK + _OUTPUTS)
RATEINTS_ARGS = ([("sci", "f4*"), ("err", "f4*"), ("dq", "u4*"), ("overlaps", "b1*"),
                  ("n_bkg", "i8"), ("n_int", "i8"), ("n_pix", "i8")] + _OPTIONS
                 + [("empty_nan", "b1"), ("none_nan", "b1")]
                 + _scratch_spec("_t", "f8*") + _scratch_spec("_k", "f8*")
                 + _WORK + [("d", "f8*"), ("e", "f8*"), ("int_sum", "f4*")] + _OUTPUTS)
_SCALARS = {"f8": ctypes.c_double, "i8": ctypes.c_int64, "b1": ctypes.c_bool}
_lock = threading.Lock()
_loaded: dict[Path, "NativeKernels | None"] = {}


@functools.lru_cache(maxsize=None)
def source_digest() -> str:
    """Hash of every kernel source file: compiled code is reused only for this source.

    Computed once per process (every tile asks for the library).
    """
    sources = sorted(Path(__file__).parent.glob("*.py"))
    return hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]


def cache_root() -> Path:
    """``$NUMBA_CACHE_DIR`` or ``~/.cache/daskbkg/numba``: where compiled kernels live."""
    base = os.environ.get("NUMBA_CACHE_DIR")
    return Path(base) if base else Path.home() / ".cache" / "daskbkg" / "numba"


@functools.lru_cache(maxsize=None)
def _cpu_signature() -> str | None:
    """CPU model and feature flags of this Linux machine, or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    wanted = ("vendor_id", "model name", "flags", "Features", "CPU implementer", "CPU part")
    lines = []
    for line in text.splitlines():
        if not line.strip():  # the first processor describes them all
            break
        key = line.split(":", 1)[0].strip()
        if key in wanted:
            lines.append(line.strip())
    return "\n".join(lines) if lines else None


def library_dir() -> Path | None:
    """Folder of the native library for this source and CPU (None if unsupported)."""
    cpu = _cpu_signature()
    if cpu is None:
        return None
    key = hashlib.sha256(f"{source_digest()}\n{cpu}".encode()).hexdigest()[:16]
    return cache_root() / f"native-{key}"


def _enabled() -> bool:
    return os.environ.get("DASKBKG_NATIVE", "1") != "0"


def _ctypes_signature(args) -> list:
    """Ctypes argument types of an entry point (every pointer as ``void *``)."""
    return [ctypes.c_void_p if kind.endswith("*") else _SCALARS[kind] for _, kind in args]


class NativeKernels:
    """The two entry points of a loaded library, called with NumPy arrays.

    Parameters
    ----------
    folder : pathlib.Path
        Folder holding ``rate.so`` and ``rateints.so`` from :func:`build`.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self._rate = self._entry(folder / "rate.so", _ENTRIES["rate"], RATE_ARGS)
        self._rateints = self._entry(folder / "rateints.so", _ENTRIES["rateints"],
                                     RATEINTS_ARGS)

    @staticmethod
    def _entry(path: Path, name: str, args):
        func = getattr(ctypes.CDLL(str(path)), name)
        func.restype = None
        func.argtypes = _ctypes_signature(args)
        return func

    def rate(self, sci, err, dq, overlaps, sigma, pass_limit, reject, none_nan, scratch,
             work, *outputs):
        """Same arguments as :func:`daskbkg.kernels.blocked.rate_kernel`."""
        self._rate(*_ptrs(sci, err, dq, overlaps), *sci.shape, sigma, pass_limit, reject,
                   none_nan, *_scratch_args(scratch), *_ptrs(*work), *_ptrs(*outputs))

    def rateints(self, sci, err, dq, overlaps, sigma, pass_limit, reject, empty_nan,
                 none_nan, scratch_t, scratch_k, work, means, *outputs):
        """Same arguments as :func:`daskbkg.kernels.blocked.rateints_kernel`."""
        self._rateints(*_ptrs(sci, err, dq, overlaps), *sci.shape, sigma, pass_limit, reject,
                       empty_nan, none_nan, *_scratch_args(scratch_t),
                       *_scratch_args(scratch_k), *_ptrs(*work), *_ptrs(*means),
                       *_ptrs(*outputs))


def _scratch_args(scratch) -> tuple:
    """C arguments of a clip scratch (see :func:`_scratch_spec`)."""
    buf, pairs, _, stats, counts = scratch
    return _ptr(buf), buf.shape[0], _ptr(pairs), pairs.shape[0], _ptr(stats), _ptr(counts)


def _ptrs(*arrays) -> tuple:
    """Addresses of several arrays (see :func:`_ptr`)."""
    return tuple(_ptr(a) for a in arrays)


def _ptr(array) -> int:
    """Address of a C-contiguous array's data (the callers guarantee contiguity)."""
    return array.__array_interface__["data"][0]


def load() -> NativeKernels | None:
    """The native kernels for this source and CPU if built (see :func:`build`), else None."""
    if not _enabled():
        return None
    folder = library_dir()
    if folder is None:
        return None
    with _lock:
        if folder not in _loaded:
            try:
                _loaded[folder] = NativeKernels(folder) if (folder / "ok").exists() else None
            except (OSError, AttributeError):  # missing, truncated or foreign library
                _loaded[folder] = None
        return _loaded[folder]


_LLVM_TYPES = {"f8": "double", "i8": "i64", "b1": "i8"}


def _entry_wrapper(symbol: str, target: str, args) -> str:
    """LLVM IR of a C function ``symbol(args)`` calling numba's compiled ``target``.

    numba's own calling convention adds a return slot and an exception slot before the
    arguments and returns a status; the kernels cannot raise, so both are ignored.
    """
    types = ["ptr" if kind.endswith("*") else _LLVM_TYPES[kind] for _, kind in args]
    params = ", ".join(f"{t} %a{i}" for i, t in enumerate(types))
    passed = ", ".join(f"{t} %a{i}" for i, t in enumerate(types))
    return (f"define void @{symbol}({params}) {{\n"
            f"  %ret = alloca ptr\n  %exc = alloca ptr\n"
            f"  %status = call i32 @\"{target}\"(ptr %ret, ptr %exc, {passed})\n"
            f"  ret void\n}}\n")


#: A meminfo destructor is only reached by arrays that own memory; the kernels see views
#: of caller memory only (meminfo NULL), so reaching it would be a bug: trap.
_TRAPS = """
define void @NRT_MemInfo_call_dtor(ptr %m) {
  call void @llvm.trap()
  unreachable
}
declare void @llvm.trap()
"""


def _object_code(entry, symbol: str, args) -> bytes:
    """Object code for this CPU of the numba-compiled ``entry`` behind a C entry point.

    The module numba optimised is reused as it is; the only passes run on it here
    remove the functions the entry point does not reach (numba's Python wrappers).
    """
    import llvmlite.binding as llvm
    from numba.core import config

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    signature = entry.signatures[0]
    target = entry.overloads[signature].fndesc.mangled_name
    module = llvm.parse_assembly(entry.inspect_llvm(signature)
                                 + _entry_wrapper(symbol, target, args))
    cpu = config.CPU_NAME or llvm.get_host_cpu_name()
    features = config.CPU_FEATURES or llvm.get_host_cpu_features().flatten()
    machine = llvm.Target.from_triple(module.triple).create_target_machine(
        cpu=cpu, features=features, opt=3, reloc="pic", codemodel="default")
    if any(f.name == "NRT_MemInfo_call_dtor" for f in module.functions):
        module.link_in(llvm.parse_assembly(_TRAPS))
    # Only the entry point is exported; unreached functions then go away.
    for value in (*module.functions, *module.global_variables):
        if not value.is_declaration and value.name != symbol:
            value.linkage = "internal"
    passes = llvm.create_new_module_pass_manager()
    passes.add_global_dead_code_eliminate_pass()
    passes.add_strip_dead_prototype_pass()
    passes.run(module, llvm.create_pass_builder(machine, llvm.create_pipeline_tuning_options()))
    foreign = sorted(f.name for f in module.functions if f.is_declaration
                     and not f.name.startswith(_ALLOWED_EXTERNALS))
    if foreign:
        raise RuntimeError(f"the compiled kernel calls {foreign}; not linking it")
    module.verify()
    return machine.emit_object(module)


def build(*, compiler: str | None = None) -> Path | None:
    """Write the native library for this source and CPU; return its folder.

    Needs numba (to compile) and a C compiler (``$CC`` or ``cc``, to link). Returns None,
    leaving the numba path in charge, when the platform, the compiler or the build is
    not up to it. The folder is written next to its final place and renamed into it,
    so a reader never sees half a library.
    """
    folder = library_dir()
    cc = shutil.which(compiler or os.environ.get("CC", "cc"))
    if folder is None or cc is None:
        return None
    if (folder / "ok").exists():
        return folder
    from . import cdefs

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".native-", dir=folder.parent))
    except OSError:  # a read-only cache: numba will do
        return None
    try:
        for name, entry, args in (("rate", cdefs.rate_entry, RATE_ARGS),
                                  ("rateints", cdefs.rateints_entry, RATEINTS_ARGS)):
            obj = work / f"{name}.o"
            obj.write_bytes(_object_code(entry, _ENTRIES[name], args))
            subprocess.run([cc, "-shared", "-o", str(work / f"{name}.so"), str(obj)],
                           check=True, capture_output=True)
            obj.unlink()
        (work / "ok").write_text(source_digest() + "\n")
        try:
            work.rename(folder)
        except OSError:  # another process finished first: keep its library
            if not (folder / "ok").exists():
                raise
    except (OSError, RuntimeError, subprocess.CalledProcessError):
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with _lock:
        _loaded.pop(folder, None)
    return folder
