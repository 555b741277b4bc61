"""Campaign benchmark on a real local cluster: 1, 2 and 4 single-thread workers.

Usage::

    python -m benchmarks.campaign                      # 16 products, 512², 8 backgrounds each
    python -m benchmarks.campaign --products 8 --frame 256 --workers 1 2

A `dask scheduler` and N `dask worker --nthreads 1` processes are started on 127.0.0.1
for each N (the same set-up as ``tests/cluster.py``). The campaign runs through the
Python API from this process, which is the client, so its CPU time, its peak RSS and
the bytes it wrote (``wchar`` of ``/proc/self/io``) are the client's alone. Every
product has its own backgrounds (no shared combined background), so the products are
independent and the speedup from 1 to N workers is what the engine can get out of the
cluster. Concurrency is read from the scheduler's record of task compute intervals.
Each worker imports daskbkg before the clock starts (about half a second per process,
paid once in a campaign of thousands of products).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _wchar() -> int:
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("wchar:"))


def cpu_seconds() -> float:
    """CPU time (user + system) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _warm_up() -> None:
    """Import what a product job needs (done once by every worker of a real campaign)."""
    import astropy.io.fits  # noqa: F401
    import dask.array  # noqa: F401

    import daskbkg.campaign.jobs  # noqa: F401
    import daskbkg.kernels  # noqa: F401
    import daskbkg.subtract  # noqa: F401


def make_inputs(root: Path, products: int, frame: int, backgrounds: int,
                nints: int = 1) -> list[str]:
    """One association per product, each with its own backgrounds (reused between runs).

    ``nints`` > 1 makes rateints cubes of that many integrations.
    """
    from daskbkg.datasets import make_dataset

    stamp = root / f"inputs-{products}-{frame}-{backgrounds}-{nints}.json"
    if stamp.exists():
        return json.loads(stamp.read_text())
    asns = [str(make_dataset(root / f"p{frame}-{backgrounds}-{nints}-{i}", n_targets=1,
                             n_backgrounds=backgrounds, frame_shape=(frame, frame),
                             rateints=nints > 1, nints=nints, seed=500 + i,
                             prefix=f"jw{20000 + i}", overwrite=True,
                             var_arrays=False).asn) for i in range(products)]
    stamp.write_text(json.dumps(asns))
    return asns


def run_once(asns: list[str], workers: int, out: Path) -> dict:
    """One campaign on ``workers`` single-thread workers; wall, concurrency, client costs."""
    import distributed

    from daskbkg import Campaign, RunSettings
    from tests.cluster import dask_cluster

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with dask_cluster(out, workers=workers, memory="4GB") as info, \
            distributed.Client(info["address"]) as client:
        client.run(_warm_up)  # imports once per worker, as a long campaign amortises them
        cpu, wchar, start = cpu_seconds(), _wchar(), time.perf_counter()
        with distributed.get_task_stream(client) as stream:
            report = Campaign.from_inputs(asns, RunSettings(output_dir=out / "products")).run(
                {"scheduler": client})
        wall = time.perf_counter() - start
        cpu, wchar = cpu_seconds() - cpu, _wchar() - wchar
    if not report.ok:
        raise RuntimeError(report.table())
    spans = [(s["start"], s["stop"]) for rec in stream.data for s in rec["startstops"]
             if s["action"] == "compute"]
    busy = max(b for _, b in spans) - min(a for a, _ in spans)
    written = sum(p.stat().st_size for p in (out / "products").iterdir() if p.is_file())
    return {"workers": workers, "wall_s": wall, "concurrency": sum(b - a for a, b in spans) / busy,
            "client_cpu_ms_per_product": 1000 * cpu / len(asns),
            "client_written_fraction": wchar / written, "output_mb": written / 1e6,
            "client_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=16)
    parser.add_argument("--frame", type=int, default=512, help="frame size (square)")
    parser.add_argument("--backgrounds", type=int, default=8, help="backgrounds per product")
    parser.add_argument("--nints", type=int, default=1, help="integrations (>1: rateints)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=2, help="runs per worker count (best kept)")
    parser.add_argument("--data", type=Path,
                        default=Path(tempfile.gettempdir()) / "daskbkg-bench-campaign")
    args = parser.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    asns = make_inputs(args.data, args.products, args.frame, args.backgrounds, args.nints)
    rows = []
    for n in args.workers:
        runs = [run_once(asns, n, args.data / f"run-{n}") for _ in range(args.repeat)]
        rows.append(min(runs, key=lambda r: r["wall_s"]))
    one = next((r["wall_s"] for r in rows if r["workers"] == 1), None)
    kind = f"rateints of {args.nints} integrations" if args.nints > 1 else "rate"
    print(f"{args.products} products ({kind}), {args.frame}², {args.backgrounds} backgrounds "
          f"each, best of {args.repeat}")
    print("| workers | wall s | speedup vs 1 | concurrency | client CPU ms/product "
          "| client share of bytes written | client peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        speed = f"{one / r['wall_s']:.2f}×" if one else "-"
        print(f"| {r['workers']} | {r['wall_s']:.2f} | {speed} | {r['concurrency']:.2f} "
              f"| {r['client_cpu_ms_per_product']:.1f} | {100 * r['client_written_fraction']:.3f} % "
              f"| {r['client_maxrss_mib']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
