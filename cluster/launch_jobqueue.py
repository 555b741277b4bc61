#!/usr/bin/env python
r"""Run a daskbkg campaign on a SLURM or PBS cluster through dask-jobqueue.

Usage::

    python cluster/launch_jobqueue.py --system slurm --jobs 4 -- \\
        run jw01234-o001_image2_asn.json --output-dir out --save-combined-background

Everything after ``--`` is a ``daskbkg`` command line (the leading ``run`` may be
omitted). The launcher

1. loads ``cluster/<system>/jobqueue.yaml`` (or ``--config PATH``) into the dask config,
2. starts a dask scheduler in this process and a ``SLURMCluster``/``PBSCluster`` on it,
3. submits ``--jobs`` batch jobs, each starting the workers the yaml describes,
4. connects a ``distributed.Client`` and prints the dashboard link,
5. runs ``daskbkg run ... --scheduler <scheduler address>`` and returns its exit code,
6. cancels the jobs when the run ends (also on errors and Ctrl-C).

``--dry-run`` prints the batch script one job would run and submits nothing (and starts
no scheduler: the address in the script is a placeholder). ``--set KEY=VALUE`` overrides
one key of the yaml (``--set walltime=04:00:00 --set queue=long``). ``--system local``
runs the same flow on a ``distributed.LocalCluster`` on this machine (``--jobs`` workers
of two threads), which is handy to test a campaign before submitting it.

Run it on a machine that can submit jobs (a login node) and that the compute nodes can
reach; the input and output folders must be on a file system the compute nodes share.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

HERE = Path(__file__).resolve().parent
SYSTEMS = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}
PLACEHOLDER_ADDRESS = "tcp://<scheduler-address>:8786"


def default_config(system: str) -> Path:
    """Return the yaml shipped for ``system`` (``cluster/<system>/jobqueue.yaml``)."""
    return HERE / system / "jobqueue.yaml"


def load_config(system: str, path: str | Path | None = None,
                overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a jobqueue yaml and return its ``jobqueue.<system>`` keys as dotted dask keys.

    Parameters
    ----------
    system : {"slurm", "pbs"}
        Section of the yaml to use.
    path : path-like, optional
        The yaml (default: :func:`default_config`).
    overrides : sequence of str
        ``KEY=VALUE`` strings; VALUE is parsed as yaml (``cores=8``, ``queue=long``).

    Returns
    -------
    dict
        ``{"jobqueue.<system>.<key>": value}``, ready for ``dask.config.set``.

    Raises
    ------
    ValueError
        The file has no ``jobqueue.<system>`` mapping, or a key is unknown to
        dask-jobqueue (typos would otherwise be ignored silently).
    """
    import dask
    import dask_jobqueue  # noqa: F401  (registers the jobqueue defaults in dask.config)
    import yaml

    path = Path(path) if path is not None else default_config(system)
    document = yaml.safe_load(path.read_text()) or {}
    section = (document.get("jobqueue") or {}).get(system)
    if not isinstance(section, dict):
        raise ValueError(f"{path}: no 'jobqueue: {system}:' mapping")
    section = dict(section)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: use KEY=VALUE")
        section[key.strip()] = yaml.safe_load(value)
    known = {k.replace("_", "-") for k in dask.config.get(f"jobqueue.{system}")}
    unknown = sorted(k for k in section if k.replace("_", "-") not in known)
    if unknown:
        raise ValueError(f"{path}: unknown jobqueue.{system} keys: {', '.join(unknown)}")
    return {f"jobqueue.{system}.{key}": value for key, value in section.items()}


def cluster_class(system: str):
    """Return the dask-jobqueue cluster class of ``system``."""
    import dask_jobqueue

    return getattr(dask_jobqueue, SYSTEMS[system])


def render_job_script(system: str) -> str:
    """Render one job's batch script under the current dask config (placeholder address).

    This is what ``cluster.job_script()`` returns before the scheduler has started; no
    scheduler is started and nothing is submitted.
    """
    job_cls = cluster_class(system).job_cls
    return job_cls(PLACEHOLDER_ADDRESS, name="dummy-name", config_name=system).job_script()


def daskbkg_argv(args: Sequence[str], address: str) -> list[str]:
    """Build the ``daskbkg`` command line to run against the scheduler at ``address``."""
    argv = list(args)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv or argv[0] != "run":
        argv = ["run", *argv]
    if any(a == "--scheduler" or a.startswith("--scheduler=") for a in argv):
        raise ValueError("do not pass --scheduler to daskbkg: the launcher sets it")
    return [*argv, "--scheduler", address]


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of the launcher (daskbkg's own options follow ``--``)."""
    parser = argparse.ArgumentParser(
        prog="launch_jobqueue.py",
        description="Start dask workers as SLURM/PBS jobs (dask-jobqueue) and run daskbkg "
                    "on them. Everything after -- is a daskbkg command line.",
        epilog="example: python cluster/launch_jobqueue.py --system slurm --jobs 4 -- "
               "run asn.json --output-dir out",
    )
    parser.add_argument("--system", required=True, choices=(*SYSTEMS, "local"),
                        help="batch system (local: a LocalCluster on this machine)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="batch jobs to submit (local: worker processes); default 1")
    parser.add_argument("--config", default=None,
                        help="jobqueue yaml (default: cluster/<system>/jobqueue.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override one key of the yaml (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the job script and exit without submitting anything")
    parser.add_argument("--wait-workers", type=int, default=0, metavar="N",
                        help="wait until N workers are connected before starting (default 0)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds to wait for --wait-workers (default 3600)")
    return parser


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split the launcher's own options from the daskbkg command line at ``--``."""
    argv = list(argv)
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def _start_cluster(system: str, jobs: int):
    if system == "local":
        from distributed import LocalCluster

        return LocalCluster(n_workers=jobs, threads_per_worker=2, host="127.0.0.1",
                            dashboard_address="127.0.0.1:0")
    cluster = cluster_class(system)()
    cluster.scale(jobs=jobs)
    return cluster


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code of the daskbkg run."""
    own, rest = split_argv(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(own)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if not rest and not args.dry_run:
        parser.error("give the daskbkg command line after --, e.g. -- run asn.json -o out")

    import dask

    settings: dict[str, Any] = {}
    if args.system != "local":
        try:
            settings = load_config(args.system, args.config, args.overrides)
        except (OSError, ValueError) as exc:
            parser.error(str(exc))
    with dask.config.set(settings):
        if args.dry_run:
            if args.system == "local":
                print(f"# LocalCluster: {args.jobs} worker(s) x 2 threads on 127.0.0.1")
            else:
                print(render_job_script(args.system))
            return 0
        try:
            preview = daskbkg_argv(rest, PLACEHOLDER_ADDRESS)
        except ValueError as exc:
            parser.error(str(exc))
        from distributed import Client

        import daskbkg.cli

        with _start_cluster(args.system, args.jobs) as cluster, Client(cluster) as client:
            print(f"dask dashboard: {client.dashboard_link}", flush=True)
            print(f"scheduler: {client.scheduler.address}; jobs requested: {args.jobs}",
                  flush=True)
            if args.wait_workers:
                client.wait_for_workers(args.wait_workers, timeout=args.timeout)
            argv_run = preview[:-1] + [client.scheduler.address]
            print("running: daskbkg " + " ".join(argv_run), flush=True)
            return daskbkg.cli.main(argv_run)


if __name__ == "__main__":
    sys.exit(main())
