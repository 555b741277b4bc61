"""Benchmark daskbkg against the I/O floor and a reference-style baseline, in one run.

Usage::

    python -m benchmarks.run                 # the full table (needs ~60 GB of disk)
    python -m benchmarks.run --quick         # small configurations only
    python -m benchmarks.run --only rate32 --repeat 3

For every configuration the script generates data with ``daskbkg.datasets``, then runs
each contender as a separate process (so interpreter start and imports count) and
reports wall time and the peak RSS of the child process:

* ``daskbkg`` — the real CLI (``daskbkg run ... --no-resume``) as installed (its C
  kernels are built with the package: nothing is compiled or cached at run time); the
  first run of each configuration is reported too ("first run"), next to the best of
  the following ones;
* ``floor`` — interpreter start + imports + reading every input tile once with the same
  reader + writing the outputs, with no computation;
* ``baseline`` — what the reference step does: whole stack loaded, astropy
  ``sigma_clip(axis=0)``, masked mean, quadrature error sum, subtraction, FITS output.

* ``jwst`` (with ``--jwst PYTHON``) — the reference pipeline's ``BackgroundStep``
  (``benchmarks/jwst_step.py``) run by the interpreter of its own virtual environment
  (``--make-jwst-venv DIR`` creates one with jwst 3.0.0), offline, on the same inputs;
  one call of the step per target; best of ``--repeat`` runs like the others;
* ``previous`` (with ``--previous PYTHON``) — the same CLI command run by another
  installation's interpreter, e.g. a virtual environment holding an earlier commit of
  daskbkg (``git worktree add``), so that a change is measured against the code it
  replaces in the same run; ``--previous-env KEY=VALUE`` sets its environment. Its runs
  alternate with daskbkg's, so both see the machine in the same state.

Ratios (daskbkg / floor, baseline / daskbkg, daskbkg / previous) are measured in the same
run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Config:
    """One benchmark configuration."""

    name: str
    n_backgrounds: int
    rateints: bool = False
    nints: int = 1
    n_targets: int = 1
    frame: tuple[int, int] = (2048, 2048)


CONFIGS = [
    Config("rate4", 4), Config("rate8", 8), Config("rate16", 16), Config("rate32", 32),
    Config("rate64", 64),
    Config("rateints2", 2, True, 10), Config("rateints4", 4, True, 10),
    Config("rateints8", 8, True, 10),
    Config("campaign20", 8, n_targets=20),
]
QUICK = [Config("q-rate8", 8, frame=(512, 512)), Config("q-rateints4", 4, True, 5, frame=(512, 512)),
         Config("q-campaign5", 4, n_targets=5, frame=(512, 512))]


def _run(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """Run a command through the launcher; return (wall seconds, its peak RSS in MiB)."""
    environ = {**os.environ, **(env or {})}
    # Children write and use bytecode caches, as an installed package does (a shell that
    # sets PYTHONDONTWRITEBYTECODE would make every run compile the editable sources).
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run([sys.executable, str(HERE / "_measure.py"), *argv],
                         env=environ, capture_output=True, text=True)
    result = json.loads(out.stdout)
    if result["code"] != 0:
        raise RuntimeError(f"{argv[:4]} failed:\n{result['stderr']}")
    return result["wall"], result["maxrss_kib"] / 1024.0


def _dataset(cfg: Config, root: Path):
    from daskbkg.datasets import make_dataset

    folder = root / cfg.name
    stamp = folder / "done.json"
    if stamp.exists():
        return json.loads(stamp.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    data = make_dataset(folder, n_backgrounds=cfg.n_backgrounds, rateints=cfg.rateints,
                        nints=cfg.nints, n_targets=cfg.n_targets, frame_shape=cfg.frame,
                        seed=7, var_arrays=False, write_asn=True)
    info = {"targets": [str(p) for p in data.targets],
            "backgrounds": [str(p) for p in data.backgrounds], "asn": str(data.asn)}
    stamp.write_text(json.dumps(info))
    return info


def _cat(paths: list[str]) -> None:
    """Bring files into the page cache (all contenders then read from memory)."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(64 * 2**20):
                pass


def measure(cfg: Config, root: Path, repeat: int, previous: tuple[str, dict] | None = None,
            jwst: str | None = None) -> dict:
    """Time every contender on one configuration; best wall of ``repeat`` runs.

    ``previous`` is ``(python, environment)`` of an earlier installation to compare with;
    ``jwst`` the interpreter of a virtual environment holding the jwst package.
    """
    info = _dataset(cfg, root)
    _cat(info["targets"] + info["backgrounds"])
    out = root / "out" / cfg.name
    py = sys.executable
    if cfg.n_targets > 1:
        daskbkg_cmd = [py, "-m", "daskbkg.cli", "run", info["asn"], "--no-resume", "--quiet",
                       "--output-dir", str(out)]
        floor_args = ["--asn", info["asn"]]
    else:
        daskbkg_cmd = [py, "-m", "daskbkg.cli", "run", info["targets"][0], "--bkg",
                       *info["backgrounds"], "--no-resume", "--quiet", "--output-dir", str(out)]
        floor_args = [info["targets"][0], *info["backgrounds"]]
    floor_cmd = [py, str(HERE / "floor.py"), "--output-dir", str(out / "floor"), *floor_args]
    base_cmd = [py, str(HERE / "baseline.py"), "--output-dir", str(out / "baseline"), *floor_args]
    row: dict = {"config": cfg.name}
    best = lambda cmd, env=None: min((_run(cmd, env) for _ in range(repeat)), key=lambda r: r[0])  # noqa: E731
    # daskbkg and the previous installation run alternately, so that both see the same
    # state of the machine (page cache, other load) in every round.
    rivals = {"daskbkg": (daskbkg_cmd, None)}
    if previous is not None:
        rivals["previous"] = ([previous[0], *daskbkg_cmd[1:]], previous[1])
    row["first_s"], _ = _run(daskbkg_cmd)  # first touch of this configuration's files
    if previous is not None:
        _run(*rivals["previous"])
    runs: dict = {name: [] for name in rivals}
    for _ in range(repeat):
        for name, (cmd, env) in rivals.items():
            runs[name].append(_run(cmd, env))
    for name, results in runs.items():
        row[f"{name}_s"], row[f"{name}_mib"] = min(results, key=lambda r: r[0])
    row["floor_s"], row["floor_mib"] = best(floor_cmd)
    row["baseline_s"], row["baseline_mib"] = _run(base_cmd)
    if jwst is not None:
        jwst_cmd = [jwst, str(HERE / "jwst_step.py"), "--output-dir", str(out / "jwst"),
                    "--bkg", *info["backgrounds"], "--", *info["targets"]]
        row["jwst_s"], row["jwst_mib"] = best(jwst_cmd)
    row["vs_floor"] = row["daskbkg_s"] / row["floor_s"]
    row["speedup"] = row["baseline_s"] / row["daskbkg_s"]
    return row


def _jwst_venv(folder: Path) -> Path:
    """A virtual environment with jwst 3.0.0 (created once); its interpreter."""
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "jwst==3.0.0"], check=True)
    return python


def _table(rows: list[dict]) -> str:
    prev = any("previous_s" in r for r in rows)
    head = ("| config | daskbkg s | first run s | floor s | ×floor | baseline s "
            "| speedup | daskbkg MiB | floor MiB | baseline MiB |")
    if prev:
        head += " previous s | ×previous | previous MiB |"
    jw = any("jwst_s" in r for r in rows)
    if jw:
        head += " jwst 3.0.0 s | vs jwst | jwst MiB |"
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        line = (f"| {r['config']} | {r['daskbkg_s']:.2f} | {r['first_s']:.2f} "
                f"| {r['floor_s']:.2f} "
                f"| {r['vs_floor']:.2f} | {r['baseline_s']:.2f} | {r['speedup']:.1f}× "
                f"| {r['daskbkg_mib']:.0f} | {r['floor_mib']:.0f} | {r['baseline_mib']:.0f} |")
        if prev:
            line += (f" {r['previous_s']:.2f} | {r['daskbkg_s'] / r['previous_s']:.2f} "
                     f"| {r['previous_mib']:.0f} |")
        if jw:
            line += (f" {r['jwst_s']:.2f} | {r['jwst_s'] / r['daskbkg_s']:.1f}× "
                     f"| {r['jwst_mib']:.0f} |")
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small configurations only")
    parser.add_argument("--only", nargs="*", help="configuration names to run")
    parser.add_argument("--repeat", type=int, default=2, help="runs per contender (best kept)")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "daskbkg-bench",
                        help="folder for generated data (reused between runs)")
    parser.add_argument("--previous", default=None, metavar="PYTHON",
                        help="interpreter of an earlier installation to compare with")
    parser.add_argument("--previous-env", nargs="*", default=[], metavar="KEY=VALUE",
                        help="environment of the --previous runs")
    parser.add_argument("--jwst", default=None, metavar="PYTHON",
                        help="interpreter of a virtual environment with jwst (reference column)")
    parser.add_argument("--make-jwst-venv", type=Path, default=None, metavar="DIR",
                        help="create DIR as a virtual environment with jwst 3.0.0 and use it")
    parser.add_argument("--results", type=Path, default=None,
                        help="append the table to this Markdown file")
    args = parser.parse_args(argv)
    if args.make_jwst_venv is not None:
        args.jwst = str(_jwst_venv(args.make_jwst_venv))
    configs = QUICK if args.quick else CONFIGS
    if args.only:
        configs = [c for c in CONFIGS + QUICK if c.name in args.only]
    args.data.mkdir(parents=True, exist_ok=True)
    rows = []
    for cfg in configs:
        previous = None
        if args.previous:
            previous = (args.previous, dict(kv.split("=", 1) for kv in args.previous_env))
        rows.append(measure(cfg, args.data, args.repeat, previous, args.jwst))
        print(_table(rows[-1:]).splitlines()[-1], flush=True)
    table = _table(rows)
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"Python {platform.python_version()}, {datetime.date.today().isoformat()}")
    print(f"\n{machine}\n{table}")
    if args.results:
        with open(args.results, "a") as f:
            f.write(f"\n### {machine}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
