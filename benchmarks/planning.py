"""Client-side cost of a campaign per product: CPU time and memory, 10³ and 10⁴ products.

Usage::

    python -m benchmarks.planning                    # 1000 and 10000 products
    python -m benchmarks.planning --products 1000 --execute

A handful of tiny exposures is reused under new names (hard links), so the campaign
has many distinct products without much disk. Two phases are timed in this process:

* **expand**: ``items_from_inputs`` on an ``@list`` file naming every target (what the
  client reads: the list, no FITS header);
* **engine**: the campaign's client loop (window, submissions, outcomes, manifest,
  report) against a backend whose jobs return at once, so only the client's own work
  is measured.

With ``--execute`` the campaign also runs for real on a local cluster (a scheduler
and two single-thread workers, separate processes), and the client's CPU time and
peak RSS are reported for the whole run.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.campaign import cpu_seconds  # noqa: E402


def make_campaign(root: Path, products: int) -> tuple[Path, list[Path]]:
    """``products`` targets (hard links of 4 files) and 4 shared backgrounds; the list file."""
    from daskbkg.datasets import make_dataset

    data = make_dataset(root / "base", n_targets=4, n_backgrounds=4, frame_shape=(16, 16),
                        seed=3, write_asn=False, var_arrays=False, overwrite=True)
    folder = root / f"targets-{products}"
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(products):
        name = folder / f"jw{30000 + i // 1000:05d}{i % 1000:03d}001_02101_00001_nrca1_rate.fits"
        if not name.exists():
            os.link(data.targets[i % 4], name)
        names.append(name.name)
    listfile = root / f"list-{products}.txt"
    listfile.write_text("".join(f"{folder.name}/{n}\n" for n in names))
    return listfile, list(data.backgrounds)


def _instant_backend():
    from daskbkg.campaign.backends import Backend

    class InstantBackend(Backend):
        """A backend whose jobs finish at once with a 'done' outcome (client cost only)."""

        kind, slots = "instant", 2

        def __init__(self):
            import queue

            self._done = queue.Queue()

        def submit(self, fn, *args, key=None, retries=0):
            """A finished future holding a small 'done' outcome."""
            from daskbkg.campaign.outcome import Outcome

            future = cf.Future()
            name = getattr(getattr(args[0], "item", None), "name", "combined")
            future.set_result(Outcome(name, "done", status="COMPLETE"))
            return future

        def add(self, future):
            """Queue the (finished) future."""
            self._done.put(future)

        def next_done(self):
            """The next queued future."""
            return self._done.get()

    return InstantBackend()


def client_costs(listfile: Path, backgrounds: list[Path], out: Path) -> dict:
    """CPU seconds and traced memory of expansion and of the engine's client loop."""
    from daskbkg import RunSettings
    from daskbkg.campaign import Campaign, engine, items_from_inputs

    original = engine.make_backend
    engine.make_backend = lambda *a, **k: _instant_backend()
    warm = items_from_inputs([f"@{listfile}"], backgrounds=[str(b) for b in backgrounds])[:10]
    Campaign(warm, RunSettings(output_dir=out / "warm-up")).run()  # imports, not measured
    tracemalloc.start()
    cpu = cpu_seconds()
    items = items_from_inputs([f"@{listfile}"], backgrounds=[str(b) for b in backgrounds])
    expand_cpu = cpu_seconds() - cpu
    items_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    try:
        cpu = cpu_seconds()
        report = Campaign(items, RunSettings(output_dir=out)).run()
        engine_cpu = cpu_seconds() - cpu
    finally:
        engine.make_backend = original
    peak = tracemalloc.get_traced_memory()[1] - items_bytes
    tracemalloc.stop()
    n = len(items)
    assert report.counts() == {"done": n}
    return {"products": n, "expand_us": 1e6 * expand_cpu / n, "engine_us": 1e6 * engine_cpu / n,
            "items_bytes": items_bytes / n, "engine_peak_bytes": peak / n}


def execute(listfile: Path, backgrounds: list[Path], out: Path) -> dict:
    """The whole campaign on a local cluster; the client's CPU and peak RSS per product."""
    import distributed

    from daskbkg import Campaign, RunSettings
    from tests.cluster import dask_cluster

    out.mkdir(parents=True, exist_ok=True)
    with dask_cluster(out, workers=2) as info, distributed.Client(info["address"]) as client:
        cpu, start = cpu_seconds(), time.perf_counter()
        report = Campaign.from_inputs([f"@{listfile}"], RunSettings(output_dir=out / "p"),
                                      backgrounds=[str(b) for b in backgrounds]).run(
            {"scheduler": client})
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    n = len(report.outcomes)
    assert report.ok, report.table()
    return {"products": n, "wall_s": wall, "client_cpu_ms": 1000 * cpu / n,
            "client_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--execute", action="store_true",
                        help="also run the campaign for real on a local cluster")
    parser.add_argument("--data", type=Path,
                        default=Path(tempfile.gettempdir()) / "daskbkg-bench-planning")
    args = parser.parse_args(argv)
    print("| products | expand µs/product | engine loop µs/product | items bytes/product "
          "| engine peak bytes/product (beyond the items) |")
    print("|---|---|---|---|---|")
    runs = []
    for n in args.products:
        listfile, backgrounds = make_campaign(args.data, n)
        runs.append((listfile, backgrounds, n))
        r = client_costs(listfile, backgrounds, args.data / f"out-{n}")
        print(f"| {n} | {r['expand_us']:.0f} | {r['engine_us']:.0f} | {r['items_bytes']:.0f} "
              f"| {r['engine_peak_bytes']:.0f} |", flush=True)
    if args.execute:
        print("\n| products (executed, 2 workers) | wall s | client CPU ms/product "
              "| client peak RSS MiB |")
        print("|---|---|---|---|")
        for listfile, backgrounds, n in runs:
            r = execute(listfile, backgrounds, args.data / f"run-{n}")
            print(f"| {n} | {r['wall_s']:.1f} | {r['client_cpu_ms']:.2f} "
                  f"| {r['client_maxrss_mib']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
