"""The deployment files in ``cluster/`` parse, agree with each other and render real scripts.

Nothing is submitted and no network beyond loopback is used: dask-jobqueue clusters are
built with their scheduler on 127.0.0.1 and never scaled; the launcher's ``--dry-run``
starts no scheduler at all; its ``--system local`` run uses a loopback LocalCluster.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from helpers import assert_bits_equal

import daskbkg
from daskbkg.cli import build_parser
from daskbkg.plan import plan_tiles

yaml = pytest.importorskip("yaml", reason="pyyaml is not installed (pip install pyyaml)")

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
LAUNCHER = CLUSTER / "launch_jobqueue.py"
SYSTEMS = ("slurm", "pbs")


def _load_launcher():
    spec = importlib.util.spec_from_file_location("launch_jobqueue", LAUNCHER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_launcher(args, cwd, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(LAUNCHER), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _yaml(path: Path):
    return yaml.safe_load(path.read_text())


# --- every file ------------------------------------------------------------------------
def test_expected_files_exist():
    """Every deployment file the README lists is present."""
    for name in ("README.md", "Containerfile", "launch_jobqueue.py", "slurm/jobqueue.yaml",
                 "pbs/jobqueue.yaml", "kubernetes/daskcluster.yaml",
                 "kubernetes/daskbkg-job.yaml", "kubernetes/data-pvc.yaml"):
        assert (CLUSTER / name).is_file(), name


@pytest.mark.parametrize("path", sorted(CLUSTER.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_yaml_parses(path):
    """Each yaml file is valid and holds non-empty mappings."""
    documents = list(yaml.safe_load_all(path.read_text()))
    assert documents and all(isinstance(d, dict) and d for d in documents)


#: Anything that would point daskbkg or its workers at a cache of compiled kernels.
KERNEL_CACHE = re.compile(r"numba|llvmlite|preload|kernel[ -]?cache|native-", re.IGNORECASE)


@pytest.mark.parametrize("name", ["Containerfile", "README.md", "launch_jobqueue.py",
                                  "slurm/jobqueue.yaml", "pbs/jobqueue.yaml",
                                  "kubernetes/daskcluster.yaml", "kubernetes/daskbkg-job.yaml"])
def test_no_kernel_cache_anywhere(name):
    """The kernels ship compiled in the wheel: no deployment file mentions a kernel cache."""
    assert not KERNEL_CACHE.search((CLUSTER / name).read_text())


# --- jobqueue --------------------------------------------------------------------------
@pytest.fixture
def jobqueue():
    """Import dask_jobqueue, or skip the test without it."""
    return pytest.importorskip("dask_jobqueue",
                               reason="dask-jobqueue is not installed (pip install dask-jobqueue)")


@pytest.mark.parametrize("system", SYSTEMS)
def test_jobqueue_yaml_keys_are_known(jobqueue, system):
    """Every key is a dask-jobqueue key; one process per core pair; threads pinned to 1."""
    settings = _load_launcher().load_config(system)
    section = _yaml(CLUSTER / system / "jobqueue.yaml")["jobqueue"][system]
    assert len(settings) == len(section)
    cores, processes = section["cores"], section["processes"]
    assert cores == 2 * processes, "one worker process per core pair"
    prologue = " ".join(section["job-script-prologue"])
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert f"export {var}=1" in prologue


def test_unknown_key_is_refused(jobqueue, tmp_path):
    """A misspelt key or a missing section is an error, not silently ignored."""
    launcher = _load_launcher()
    with pytest.raises(ValueError, match="unknown jobqueue.slurm keys: job_extra_directivez"):
        launcher.load_config("slurm", overrides=["job_extra_directivez=[]"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobqueue:\n  pbs:\n    cores: 4\n")
    with pytest.raises(ValueError, match="no 'jobqueue: slurm:' mapping"):
        launcher.load_config("slurm", bad)


def _check_script(script: str, system: str, section: dict) -> None:
    directive = "#SBATCH" if system == "slurm" else "#PBS"
    lines = script.splitlines()
    assert lines[0].startswith("#!")
    assert any(line.startswith(directive) for line in lines)
    assert "distributed.cli.dask_worker" in script
    threads = section["cores"] // section["processes"]
    assert f"--nthreads {threads}" in script and f"--nworkers {section['processes']}" in script
    from dask.utils import parse_bytes

    job_memory = parse_bytes(section["memory"])
    limit = re.search(r"--memory-limit (\S+)", script).group(1)
    assert parse_bytes(limit) == pytest.approx(job_memory / section["processes"], rel=0.01)
    gib = job_memory / 2**30
    if system == "slurm":
        assert f"#SBATCH --cpus-per-task={section['cores']}" in lines
        assert f"#SBATCH --mem={gib:.0f}G" in lines
        assert f"#SBATCH -t {section['walltime']}" in lines
    else:
        assert f"#PBS -l select=1:ncpus={section['cores']}:mem={gib:.0f}GB" in lines
        assert f"#PBS -l walltime={section['walltime']}" in lines
    for extra in section["job-extra-directives"]:
        assert f"{directive} {extra}" in lines
    for command in section["job-script-prologue"]:
        assert command in lines


@pytest.mark.parametrize("system", SYSTEMS)
def test_cluster_from_yaml_renders_job_script(jobqueue, system, tmp_path, monkeypatch):
    """A cluster built from the yaml renders the job script the dry run prints."""
    import dask

    monkeypatch.chdir(tmp_path)  # dask-jobqueue creates the log directory in the cwd
    launcher = _load_launcher()
    section = _yaml(CLUSTER / system / "jobqueue.yaml")["jobqueue"][system]
    cls = launcher.cluster_class(system)
    with dask.config.set(launcher.load_config(system)):
        dry = launcher.render_job_script(system)
        with cls(scheduler_options={"host": "127.0.0.1",
                                    "dashboard_address": "127.0.0.1:0"}) as cluster:
            script = cluster.job_script()
            address = cluster.scheduler_address
            assert address.startswith("tcp://127.0.0.1:")
            assert not cluster.worker_spec, "nothing may be submitted"
    _check_script(script, system, section)
    assert address in script
    assert dry == script.replace(address, launcher.PLACEHOLDER_ADDRESS)


@pytest.mark.parametrize("system", SYSTEMS)
def test_launcher_dry_run_prints_job_script(jobqueue, system, tmp_path):
    """``--dry-run`` prints the batch script; ``--set`` overrides reach it."""
    proc = _run_launcher(["--system", system, "--jobs", "3", "--dry-run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    section = _yaml(CLUSTER / system / "jobqueue.yaml")["jobqueue"][system]
    _check_script(proc.stdout, system, section)
    assert "<scheduler-address>" in proc.stdout

    proc = _run_launcher(["--system", system, "--dry-run", "--set", "cores=8",
                          "--set", "processes=4", "--set", "walltime=04:00:00"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _check_script(proc.stdout, system, dict(section, cores=8, processes=4,
                                            walltime="04:00:00"))


def test_launcher_rejects_bad_command_lines(jobqueue, tmp_path):
    """Unknown keys, a missing daskbkg command line and ``--scheduler`` exit with 2."""
    proc = _run_launcher(["--system", "slurm", "--dry-run", "--set", "corez=8"], cwd=tmp_path)
    assert proc.returncode == 2 and "unknown jobqueue.slurm keys: corez" in proc.stderr
    proc = _run_launcher(["--system", "slurm", "--jobs", "2"], cwd=tmp_path)
    assert proc.returncode == 2 and "after --" in proc.stderr
    proc = _run_launcher(["--system", "local", "--", "run", "x.json", "--scheduler", "threads"],
                         cwd=tmp_path)
    assert proc.returncode == 2 and "launcher sets it" in proc.stderr


def test_launcher_builds_daskbkg_command_line():
    """The daskbkg arguments get ``run`` and the scheduler address, and parse."""
    launcher = _load_launcher()
    address = "tcp://10.0.0.1:8786"
    assert launcher.daskbkg_argv(["asn.json", "-o", "out"], address) == [
        "run", "asn.json", "-o", "out", "--scheduler", address]
    argv = launcher.daskbkg_argv(["run", "t.fits", "--bkg", "b.fits"], address)
    assert argv == ["run", "t.fits", "--bkg", "b.fits", "--scheduler", address]
    args = build_parser().parse_args(argv)
    assert args.scheduler == address and args.bkg == ["b.fits"]
    assert launcher.split_argv(["--system", "pbs", "--", "run", "--", "a"]) == (
        ["--system", "pbs"], ["run", "--", "a"])


def test_launcher_local_run_end_to_end(tmp_path):
    """``--system local`` runs daskbkg on a loopback cluster; output equals the API's."""
    pytest.importorskip("distributed")
    data = daskbkg.datasets.make_dataset(tmp_path / "in", n_backgrounds=3, n_targets=1,
                                         frame_shape=(64, 96), seed=4)
    proc = _run_launcher(["--system", "local", "--jobs", "1", "--", "run", data.asn,
                          "--output-dir", tmp_path / "out", "--chunks", "16"], cwd=tmp_path,
                         timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dask dashboard: http://127.0.0.1:" in proc.stdout
    assert re.search(r"--scheduler tcp://127\.0\.0\.1:\d+", proc.stdout)
    target = data.targets[0]
    written = tmp_path / "out" / target.name.replace("_rate.fits", "_bkgsub.fits")
    with fits.open(written) as hdul:
        sci = np.asarray(hdul["SCI"].data)
    expected = daskbkg.subtract_background(target, data.backgrounds).compute()
    assert_bits_equal(sci.astype(sci.dtype.newbyteorder("=")), expected.sci)


# --- Kubernetes ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def k8s():
    """Parse the Kubernetes manifests."""
    folder = CLUSTER / "kubernetes"
    return {name: _yaml(folder / f"{name}.yaml")
            for name in ("daskcluster", "daskbkg-job", "data-pvc")}


def _env(container) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in container.get("env", [])}


def test_daskcluster_manifest(k8s):
    """The DaskCluster has the operator's required fields and consistent ports."""
    cluster = k8s["daskcluster"]
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1"
    assert cluster["kind"] == "DaskCluster"
    name = cluster["metadata"]["name"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    scheduler, worker = cluster["spec"]["scheduler"], cluster["spec"]["worker"]
    sched = scheduler["spec"]["containers"][0]
    assert sched["image"] and sched["command"] == ["dask", "scheduler"]
    service = scheduler["service"]
    assert {p["port"] for p in service["ports"]} == {8786, 8787}
    container_ports = {p["name"]: p["containerPort"] for p in sched["ports"]}
    for port in service["ports"]:
        assert container_ports[port["targetPort"]] == port["port"]
    assert service["selector"]["dask.org/cluster-name"] == name
    assert isinstance(worker["replicas"], int) and worker["replicas"] >= 1
    work = worker["spec"]["containers"][0]
    assert work["image"] == sched["image"] and work["command"] == ["dask", "worker"]
    args = work["args"]
    assert args[args.index("--nthreads") + 1] == "2"
    assert _env(work)["OMP_NUM_THREADS"] == "1"
    from dask.utils import parse_bytes

    limit = parse_bytes(args[args.index("--memory-limit") + 1])
    assert limit < parse_bytes(work["resources"]["limits"]["memory"].replace("Gi", "GiB"))
    assert work["resources"]["requests"]["cpu"] == args[args.index("--nthreads") + 1]


def test_job_runs_daskbkg_on_the_cluster(k8s):
    """The Job runs a valid ``daskbkg run`` on the cluster's scheduler service."""
    job, cluster, pvc = k8s["daskbkg-job"], k8s["daskcluster"], k8s["data-pvc"]
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    assert container["image"] == worker["image"]
    args = build_parser().parse_args(container["args"])  # the image's entry point is daskbkg
    assert args.command == "run"
    assert args.scheduler == f"tcp://{cluster['metadata']['name']}-scheduler:8786"
    # job and workers see the data under the same path, from the same ReadWriteMany claim
    claim = pvc["metadata"]["name"]
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    for spec, cont in ((pod, container), (cluster["spec"]["worker"]["spec"], worker)):
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in cont["volumeMounts"]}
        assert volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"] == claim
    paths = [a for a in container["args"] if a.startswith("/")]
    assert paths and all(p.startswith("/data/") for p in paths)


# --- Containerfile and README ----------------------------------------------------------
def test_containerfile():
    """Python 3.11 slim, non-root user, ``daskbkg`` entry point, existing COPY sources."""
    text = (CLUSTER / "Containerfile").read_text()
    logical = text.replace("\\\n", " ")  # join continued lines
    instructions = [line.split(None, 1) for line in logical.splitlines()
                    if line.strip() and not line.lstrip().startswith("#")
                    and not line.startswith((" ", "\t"))]
    by_kind = {}
    for kind, *rest in instructions:
        by_kind.setdefault(kind, []).append(rest[0] if rest else "")
    assert by_kind["FROM"] == ["python:3.11-slim AS build", "python:3.11-slim"]
    assert by_kind["ENTRYPOINT"] == ['["daskbkg"]']
    user = by_kind["USER"][-1].split(":")[0]
    assert user not in ("root", "0")
    # the wheel, C kernels included, is built once (build stage) and installed as is
    assert sum("pip wheel" in run and "/src" in run for run in by_kind["RUN"]) == 1
    assert sum("pip install /wheels/daskbkg-" in run for run in by_kind["RUN"]) == 1
    assert "COPY --from=build /wheels /wheels" in logical
    for copy in by_kind["COPY"]:
        if copy.startswith("--from="):
            continue
        *sources, _dest = shlex.split(copy)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY source {source} is not in the repository"
    assert "OMP_NUM_THREADS=1" in text


def test_readme_sizing_example_matches_planner():
    """README: 2048² rate, 32 backgrounds, 64-row tiles = 49.5 MiB raw / 99 MiB budgeted."""
    text = (CLUSTER / "README.md").read_text()
    n, rows, width = 32, 64, 2048
    raw = (n + 1) * rows * width * 12
    assert f"{raw / 2**20:.1f} MiB" in text and f"{2 * raw / 2**20:.0f} MiB" in text
    # a per-thread budget of twice the raw tile bytes makes the planner pick exactly 64 rows
    assert plan_tiles((2048, 2048), n, 1, memory_limit=2 * raw, threads=1).rows == rows
    for system in ("SLURM", "PBS", "Kubernetes", "dask scheduler", "dask worker"):
        assert system in text
