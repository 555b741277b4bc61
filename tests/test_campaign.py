"""Campaigns: shared combined backgrounds, resume, failure isolation, interrupts, reports."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import daskbkg
import daskbkg.kernels as kernels
from daskbkg.campaign import Campaign, items_from_inputs
from daskbkg.cli import main
from daskbkg.datasets import make_dataset
from daskbkg.runner import RunSettings
from tests.helpers import listing, same_outputs


def folder_hashes(folder) -> dict[str, str]:
    """SHA-256 of every file directly in ``folder``, its DATE card (time of writing) blanked."""
    import hashlib

    from tests.helpers import comparable_bytes

    return {p.name: hashlib.sha256(comparable_bytes(p.read_bytes())).hexdigest()
            for p in sorted(Path(folder).iterdir()) if p.is_file()}


@pytest.fixture()
def dataset(tmp_path):
    """Three targets sharing four backgrounds, one association."""
    return make_dataset(tmp_path / "in", n_targets=3, n_backgrounds=4, frame_shape=(48, 40),
                        seed=3)


def _settings(tmp_path, **kw):
    return RunSettings(output_dir=tmp_path / "out", save_combined=True, **kw)


@pytest.fixture()
def kernel_calls(monkeypatch):
    """Count combine-kernel calls (one per tile computed)."""
    calls = {"n": 0}
    lock = threading.Lock()
    original = kernels.combine_tile

    def counting(*args, **kwargs):
        with lock:
            calls["n"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(kernels, "combine_tile", counting)
    return calls


def test_shared_background_computed_once(dataset, tmp_path, kernel_calls):
    """Three targets with the same backgrounds and window: one combination per tile."""
    settings = _settings(tmp_path, chunks=(16, -1))
    report = Campaign.from_inputs([str(dataset.asn)], settings).run()
    assert [o.state for o in report.outcomes] == ["done"] * 3
    assert len({o.combined_key for o in report.outcomes}) == 1
    assert kernel_calls["n"] == 3  # 48 rows in 16-row tiles, computed once for 3 products
    # Each product equals an independent single-target computation.
    for target, outcome in zip(dataset.targets, report.outcomes):
        expected = daskbkg.subtract_background(target, dataset.backgrounds).compute()
        with fits.open(outcome.outputs[0]) as hdul:
            assert np.array_equal(hdul["SCI"].data, expected.sci, equal_nan=True)
            assert np.array_equal(hdul["DQ"].data, expected.dq)


def test_shared_background_is_read_from_a_scratch_file(dataset, tmp_path, monkeypatch):
    """Products read the shared image from one scratch file, deleted after the last one."""
    from daskbkg.io import scratch

    reads: list = []
    original = scratch.ScratchArray.__getitem__

    def spy(self, key):
        reads.append(Path(self.path))
        return original(self, key)

    monkeypatch.setattr(scratch.ScratchArray, "__getitem__", spy)
    settings = _settings(tmp_path, chunks=(16, -1))
    report = Campaign.from_inputs([str(dataset.asn)], settings).run()
    assert [o.state for o in report.outcomes] == ["done"] * 3
    shared = Path(settings.output_dir) / ".daskbkg" / "shared"
    assert reads and {p.parent for p in reads} == {shared} and len(set(reads)) == 1
    assert not shared.exists()


def test_resume_skips_complete_products(dataset, tmp_path, kernel_calls):
    """A rerun does nothing; a changed input or a lost output is redone alone."""
    settings = _settings(tmp_path)
    Campaign.from_inputs([str(dataset.asn)], settings).run()
    before = folder_hashes(settings.output_dir)
    first = kernel_calls["n"]
    report = Campaign.from_inputs([str(dataset.asn)], settings).run()
    assert [o.state for o in report.outcomes] == ["skipped"] * 3
    assert all(o.reason == "already complete (resume)" for o in report.outcomes)
    assert kernel_calls["n"] == first and folder_hashes(settings.output_dir) == before
    # Lose one output, touch another product's target: exactly those two are redone.
    lost = report.outcomes[0].outputs[0]
    lost.unlink()
    stat = os.stat(dataset.targets[2])
    os.utime(dataset.targets[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    report = Campaign.from_inputs([str(dataset.asn)], settings).run()
    assert [o.state for o in report.outcomes] == ["done", "skipped", "done"]
    assert folder_hashes(settings.output_dir) == before  # same inputs' bits, same outputs


def test_no_resume_redoes_everything(dataset, tmp_path):
    settings = _settings(tmp_path)
    Campaign.from_inputs([str(dataset.asn)], settings).run()
    report = Campaign.from_inputs([str(dataset.asn)], settings, resume=False).run()
    assert [o.state for o in report.outcomes] == ["done"] * 3


def test_corrupt_input_fails_alone(dataset, tmp_path):
    """A truncated target fails with its reason; the other products are written."""
    bad = Path(dataset.targets[1])
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2 + 1000])  # cut inside an HDU
    settings = _settings(tmp_path)
    report_path = tmp_path / "report.json"
    inputs_before = folder_hashes(dataset.outdir)
    report = Campaign.from_inputs([str(dataset.asn)], settings).run(report_path=report_path)
    states = [o.state for o in report.outcomes]
    assert sorted(states) == ["done", "done", "failed"]
    failed = next(o for o in report.outcomes if o.state == "failed")
    assert "truncated" in failed.reason and bad.name in failed.reason and failed.code == 2
    saved = json.loads(report_path.read_text())
    assert saved["counts"] == {"done": 2, "failed": 1}
    assert folder_hashes(dataset.outdir) == inputs_before
    assert not any(".tmp" in name for name in listing(settings.output_dir))


def test_failure_during_compute_isolated(dataset, tmp_path, monkeypatch):
    """A read error inside one product's tasks: the group is retried product by product."""
    from daskbkg.io import fitsarray

    bad_path = str(Path(dataset.targets[0]).resolve())
    original = fitsarray.FitsArray.read_into

    def flaky(self, slices, out):
        if self.path == bad_path:
            raise OSError(f"{bad_path}: simulated read error")
        return original(self, slices, out)

    monkeypatch.setattr(fitsarray.FitsArray, "read_into", flaky)
    report = Campaign.from_inputs([str(dataset.asn)], _settings(tmp_path)).run()
    assert [o.state for o in report.outcomes] == ["failed", "done", "done"]
    assert "simulated read error" in report.outcomes[0].reason
    assert not any(".tmp" in name for name in listing(tmp_path / "out"))


def test_interrupt_leaves_no_partial_output_and_resume_finishes(tmp_path, monkeypatch):
    """Ctrl-C after two products: they are kept, the report has every state, rerun finishes."""
    from daskbkg.campaign import CampaignInterrupted
    from daskbkg.campaign.progress import Progress

    data_a = make_dataset(tmp_path / "a", n_targets=2, n_backgrounds=3, frame_shape=(32, 32), seed=1)
    data_b = make_dataset(tmp_path / "b", n_targets=2, n_backgrounds=3, frame_shape=(32, 32), seed=2,
                          prefix="jw05678")
    settings = _settings(tmp_path)
    inputs = [str(data_a.asn), str(data_b.asn)]
    original = Progress.update
    seen = {"n": 0}

    def interrupting(self, outcome):
        original(self, outcome)
        seen["n"] += 1
        if seen["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Progress, "update", interrupting)
    campaign = Campaign.from_inputs(inputs, settings, resume=True)
    with pytest.raises(CampaignInterrupted) as stopped:
        campaign.run({"scheduler": "synchronous"}, report_path=tmp_path / "report.json")
    states = [o.state for o in stopped.value.report.outcomes]
    assert states == ["done", "done", "not started", "not started"]
    saved = json.loads((tmp_path / "report.json").read_text())
    assert [p["state"] for p in saved["products"]] == states and saved["interrupted"] is True
    done_first = listing(settings.output_dir)
    assert len(done_first) == 4 and not any(".tmp" in n for n in done_first)
    monkeypatch.setattr(Progress, "update", original)
    report = Campaign.from_inputs(inputs, settings).run()
    assert [o.state for o in report.outcomes] == ["skipped", "skipped", "done", "done"]
    assert len(listing(settings.output_dir)) == 8


def test_items_from_inputs_globs_and_list_files(tmp_path, dataset):
    listfile = tmp_path / "inputs.txt"
    listfile.write_text(f"# campaign\n{dataset.asn}\n")
    items = items_from_inputs([f"@{listfile}"])
    assert [i.name for i in items] == [p.name.rsplit("_rate", 1)[0] for p in dataset.targets]
    globbed = items_from_inputs([str(Path(dataset.outdir) / "jw*001001_*_rate.fits")],
                                backgrounds=[str(b) for b in dataset.backgrounds])
    assert len(globbed) == 3 and all(len(i.backgrounds) == 4 for i in globbed)
    missing = items_from_inputs([str(tmp_path / "nothing*.json")])
    assert missing[0].error and "no file matches" in missing[0].error


def test_cli_campaign_report_and_summary(dataset, tmp_path, capsys):
    """Several inputs in one CLI run: summary table, JSON report, exit code 0."""
    other = make_dataset(tmp_path / "in2", n_targets=1, n_backgrounds=2, frame_shape=(32, 32),
                         seed=9, prefix="jw05678")
    report = tmp_path / "report.json"
    code = main(["run", str(dataset.asn), str(other.asn), "--output-dir", str(tmp_path / "out"),
                 "--report", str(report)])
    assert code == 0
    out = capsys.readouterr().out
    assert "4 products: 4 done" in out
    saved = json.loads(report.read_text())
    assert [p["state"] for p in saved["products"]] == ["done"] * 4
    # Rerun: everything already complete.
    assert main(["run", str(dataset.asn), str(other.asn), "--output-dir",
                 str(tmp_path / "out"), "--quiet"]) == 0
    assert main(["run", str(dataset.asn), "--output-dir", str(tmp_path / "out"),
                 "--report", str(report)]) == 0
    assert {p["state"] for p in json.loads(report.read_text())["products"]} == {"skipped"}


def test_markers_require_matching_parameters(dataset, tmp_path):
    """Changing sigma invalidates the completion markers."""
    settings = _settings(tmp_path)
    Campaign.from_inputs([str(dataset.asn)], settings).run()
    changed = RunSettings(output_dir=settings.output_dir, save_combined=True,
                          params=daskbkg.ClipParams(sigma=2.5))
    report = Campaign.from_inputs([str(dataset.asn)], changed).run()
    assert [o.state for o in report.outcomes] == ["done"] * 3
    shutil.rmtree(settings.output_dir / ".daskbkg")
    report = Campaign.from_inputs([str(dataset.asn)], changed).run()
    assert [o.state for o in report.outcomes] == ["done"] * 3


@pytest.mark.parametrize("scheduler", ["processes", "synchronous"])
def test_cli_schedulers_write_identical_files(dataset, tmp_path, scheduler):
    """Files written with the process or synchronous scheduler equal the threaded ones."""
    common = [str(dataset.asn), "--save-combined-background", "--chunks", "16", "--quiet"]
    assert main(["run", *common, "--output-dir", str(tmp_path / "threads")]) == 0
    assert main(["run", *common, "--output-dir", str(tmp_path / scheduler),
                 "--scheduler", scheduler]) == 0
    assert len(same_outputs(tmp_path / scheduler, tmp_path / "threads")) == 6


# ----------------------------------------------------------------------------- engine


def test_each_header_scanned_once_per_campaign(tmp_path, monkeypatch):
    """40 products drawing on 8 shared backgrounds: every file is read once (48 scans)."""
    from daskbkg.campaign import CampaignItem, jobs
    from daskbkg.io import exposure as exposure_module

    data = make_dataset(tmp_path / "in", n_targets=40, n_backgrounds=8, frame_shape=(32, 24),
                        seed=4, write_asn=False)
    monkeypatch.setattr(jobs, "_cache", type(jobs._cache)())  # a fresh process-wide cache
    scans: dict[str, int] = {}
    lock = threading.Lock()
    original = exposure_module.read_exposure

    def counting(path):
        with lock:
            key = os.path.abspath(os.fspath(path))
            scans[key] = scans.get(key, 0) + 1
        return original(path)

    monkeypatch.setattr(exposure_module, "read_exposure", counting)
    bkgs = list(data.backgrounds)
    items = [CampaignItem(t.name, t, tuple(bkgs[(i + k) % 8] for k in range(4)))
             for i, t in enumerate(data.targets)]
    report = Campaign(items, _settings(tmp_path)).run()
    assert report.ok and len(report.outcomes) == 40
    assert len(scans) == 48 and set(scans.values()) == {1}, scans


def test_failing_product_in_shared_group_costs_no_extra_combination(tmp_path, kernel_calls):
    """Four products share three backgrounds; one target is corrupt.

    It fails alone with its reason, the three others are written, and the combined
    background is computed exactly as often as in a clean run: once.
    """
    clean = make_dataset(tmp_path / "clean", n_targets=4, n_backgrounds=3, frame_shape=(48, 40),
                         seed=8)
    report = Campaign.from_inputs([str(clean.asn)], _settings(tmp_path / "a", chunks=(8, -1))).run()
    assert report.ok
    per_campaign = kernel_calls["n"]
    assert per_campaign == 6  # 48 rows in tiles of 8: one combination
    broken = make_dataset(tmp_path / "broken", n_targets=4, n_backgrounds=3, frame_shape=(48, 40),
                          seed=8)
    bad = Path(broken.targets[1])
    bad.write_bytes(bad.read_bytes()[:5000])
    kernel_calls["n"] = 0
    report = Campaign.from_inputs([str(broken.asn)], _settings(tmp_path / "b", chunks=(8, -1))).run()
    assert [o.state for o in report.outcomes] == ["done", "failed", "done", "done"]
    assert report.outcomes[1].code == 2 and bad.name in report.outcomes[1].reason
    assert kernel_calls["n"] == per_campaign


def test_settings_are_validated_and_exported(tmp_path):
    from daskbkg.errors import ParameterError

    settings = daskbkg.RunSettings(output_dir=tmp_path, chunks=64, memory_limit="256MiB",
                                   sigma=2.5)
    assert settings.chunks == (64, -1) and settings.memory_limit == 256 * 2**20
    assert settings.params == daskbkg.ClipParams(sigma=2.5)
    for bad in ({"fmt": "ZARR"}, {"chunks": "lots"}, {"memory_limit": "-1"}, {"suffix": ""},
                {"retries": -1}, {"sigma": 0}):
        with pytest.raises(ParameterError):
            daskbkg.RunSettings(output_dir=tmp_path, **bad)


def test_report_path_as_string_and_manifest(dataset, tmp_path):
    """``report_path`` may be a str; the manifest has one line per product."""
    report_file = str(tmp_path / "report.json")
    report = Campaign.from_inputs([str(dataset.asn)], _settings(tmp_path)).run(
        report_path=report_file)
    saved = json.loads(Path(report_file).read_text())
    assert saved["counts"] == {"done": 3} and saved["interrupted"] is False
    lines = (tmp_path / "out" / ".daskbkg" / "manifest.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["name"] for line in lines) == sorted(
        o.name for o in report.outcomes)


def test_internal_error_is_not_bad_input(dataset, tmp_path, monkeypatch, capsys):
    """A bug in daskbkg: exit code 1, one line saying so, the traceback in the log file."""
    from daskbkg import subtract

    def broken(*args, **kwargs):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(subtract, "build_product", broken)
    log_file = tmp_path / "run.log"
    code = main(["run", str(dataset.asn), "--output-dir", str(tmp_path / "out"),
                 "--log-file", str(log_file)])
    assert code == 1
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("daskbkg: error")]
    assert len(errors) == 3
    assert all("internal error (ZeroDivisionError: simulated bug)" in ln for ln in errors)
    logged = log_file.read_text()
    assert "Traceback" in logged and "simulated bug" in logged


def test_log_file_has_one_line_per_product(dataset, tmp_path):
    log_file = tmp_path / "run.log"
    assert main(["run", str(dataset.asn), "--output-dir", str(tmp_path / "out"), "--quiet",
                 "--log-file", str(log_file)]) == 0
    lines = [ln for ln in log_file.read_text().splitlines() if "] jw01234" in ln]
    assert len(lines) == 3 and all(" done (" in ln for ln in lines)


def test_url_segmap_member_is_ignored(tmp_path):
    """An association member given as a URL with role segmap is logged and ignored."""
    data = make_dataset(tmp_path / "in", n_targets=1, n_backgrounds=2, frame_shape=(32, 32),
                        seed=6)
    asn = json.loads(Path(data.asn).read_text())
    asn["products"][0]["members"].append({"expname": "s3://bucket/segm.fits", "exptype": "segmap"})
    Path(data.asn).write_text(json.dumps(asn))
    assert main(["run", str(data.asn), "--output-dir", str(tmp_path / "out"), "--quiet"]) == 0


def test_products_print_as_they_finish(dataset, tmp_path, capsys, monkeypatch):
    """Each product's 'wrote' lines are printed when it finishes, before the next starts."""
    from daskbkg.campaign import engine, jobs

    printed_since: list[str] = []  # what was printed between two product starts
    original = jobs.run_product

    def watching(job, *args):
        printed_since.append(capsys.readouterr().out)
        return original(job, *args)

    monkeypatch.setattr(engine, "run_product", watching)
    assert main(["run", str(dataset.asn), "--output-dir", str(tmp_path / "out"),
                 "--scheduler", "synchronous"]) == 0
    assert [text.count(": wrote ") for text in printed_since] == [0, 1, 1]


def test_wfss_failed_step_is_failed_and_retried(tmp_path):
    """S_BKDSUB = FAILED (a WFSS estimator failure) is a failed product, redone on resume."""
    from daskbkg.options import make_compat
    from daskbkg.settings import WfssSettings
    from tests.test_wfss_product import mask_file, ref_file, wfss_target

    rng = np.random.default_rng(4)
    sci = rng.random((20, 30)).astype(np.float32)
    target = wfss_target(tmp_path, sci, err=0.0)
    wfss = WfssSettings(bkg_ref=ref_file(tmp_path, np.ones((20, 30))),
                        source_mask=mask_file(tmp_path, np.ones((20, 30))))
    settings = RunSettings(output_dir=tmp_path / "out", compat=make_compat("jwst-3.0"), wfss=wfss)
    for _ in range(2):
        report = Campaign.from_inputs([str(target)], settings).run()
        (outcome,) = report.outcomes
        assert (outcome.state, outcome.status, outcome.code) == ("failed", "FAILED", 1)
        assert "not finite" in outcome.reason


def test_job_threads_scheduler_uses_one_thread_per_core():
    """A job's "threads" scheduler runs one tile per core, as the tile plan assumes.

    Started from a job thread, dask's threaded scheduler would otherwise use
    ThreadPoolExecutor's default size (cores + 4).
    """
    import time

    import dask

    from daskbkg.campaign.jobs import inner_scheduler

    seen, lock = set(), threading.Lock()

    def task(i):
        with lock:
            seen.add(threading.get_ident())
        time.sleep(0.02)
        return i

    def job():
        with inner_scheduler("threads") as get:
            results.extend(dask.compute(*[dask.delayed(task)(i) for i in range(24)],
                                        scheduler=get))

    results: list = []
    runner = threading.Thread(target=job)
    runner.start()
    runner.join()
    assert sorted(results) == list(range(24))
    assert 1 <= len(seen) <= (os.cpu_count() or 1)
