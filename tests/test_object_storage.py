"""fsspec URLs: inputs read with byte ranges, zarr outputs on object storage.

An S3 server (moto in server mode) runs on 127.0.0.1 for this module; fsspec finds it
through ``FSSPEC_S3_ENDPOINT_URL``. ``memory://`` and ``file://`` URLs are tested too.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

import daskbkg
from daskbkg.cli import main
from daskbkg.datasets import make_dataset

fsspec = pytest.importorskip("fsspec")
pytest.importorskip("s3fs")
pytest.importorskip("moto")
zarr = pytest.importorskip("zarr")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on loopback and a bucket holding a small dataset."""
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=log, stderr=subprocess.STDOUT)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1",
           "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    saved_conf = None
    os.environ.update(env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start")
                time.sleep(0.2)
        # fsspec reads FSSPEC_* variables at import time: set its configuration as well.
        saved_conf = fsspec.config.conf.get("s3")
        fsspec.config.conf["s3"] = {"endpoint_url": env["FSSPEC_S3_ENDPOINT_URL"]}
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        fs.mkdir("daskbkg-test")
        data = make_dataset(tmp_path_factory.mktemp("s3data"), n_targets=2, n_backgrounds=3,
                            frame_shape=(40, 48), seed=5)
        for path in (*data.targets, *data.backgrounds):
            fs.put(str(path), f"daskbkg-test/in/{path.name}")
        fs.invalidate_cache()
        yield {"fs": fs, "data": data, "bucket": "s3://daskbkg-test"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        fsspec.config.conf.pop("s3", None)
        if saved_conf is not None:
            fsspec.config.conf["s3"] = saved_conf
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _urls(s3, paths):
    return [f"{s3['bucket']}/in/{p.name}" for p in paths]


def _same(a, b):
    for x, y in ((a.sci, b.sci), (a.err, b.err), (a.dq, b.dq)):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    for key in a.combined:
        assert a.combined[key].tobytes() == b.combined[key].tobytes()


def test_s3_inputs_equal_local(s3):
    data = s3["data"]
    local = daskbkg.subtract_background(data.targets[0], data.backgrounds).compute()
    (target,) = _urls(s3, data.targets[:1])
    remote = daskbkg.subtract_background(target, _urls(s3, data.backgrounds))
    assert remote.target.path == target
    _same(remote.compute(), local)


def test_zarr_output_on_s3(s3):
    data = s3["data"]
    result = daskbkg.subtract_background(_urls(s3, data.targets[:1])[0],
                                         _urls(s3, data.backgrounds))
    url = f"{s3['bucket']}/out/api_bkgsub.zarr"
    result.to_zarr(url, combined_path=f"{s3['bucket']}/out/api_comb.zarr")
    expected = result.compute()
    group = zarr.open_group(url, mode="r")
    assert group.attrs["complete"] is True
    assert group["sci"][:].tobytes() == expected.sci.tobytes()
    assert group["dq"][:].tobytes() == expected.dq.tobytes()
    comb = zarr.open_group(f"{s3['bucket']}/out/api_comb.zarr", mode="r")
    assert comb["nbkg"][:].tobytes() == expected.combined["NBKG"].tobytes()


def test_cli_s3_campaign_with_resume(s3, tmp_path, capsys):
    data = s3["data"]
    asn = tmp_path / "s3_asn.json"
    asn.write_text(json.dumps({"asn_type": "image2", "asn_id": "s3", "products": [
        {"name": f"prod{i}", "members": [
            {"expname": t, "exptype": "science"},
            *({"expname": b, "exptype": "background"} for b in _urls(s3, data.backgrounds))]}
        for i, t in enumerate(_urls(s3, data.targets))]}))
    out = f"{s3['bucket']}/campaign"
    report = tmp_path / "report.json"
    argv = ["run", str(asn), "--output-dir", out, "--format", "zarr", "--quiet",
            "--report", str(report)]
    assert main(argv) == 0
    states = [p["state"] for p in json.loads(report.read_text())["products"]]
    assert states == ["done", "done"]
    for i, target in enumerate(data.targets):
        expected = daskbkg.subtract_background(target, data.backgrounds).compute()
        group = zarr.open_group(f"{out}/prod{i}_bkgsub.zarr", mode="r")
        assert group["sci"][:].tobytes() == expected.sci.tobytes()
    assert main(argv) == 0
    assert [p["state"] for p in json.loads(report.read_text())["products"]] == ["skipped"] * 2


def test_cli_url_output_needs_zarr(s3, capsys):
    data = s3["data"]
    code = main(["run", str(data.targets[0]), "--bkg", *map(str, data.backgrounds),
                 "--output-dir", f"{s3['bucket']}/fits"])
    assert code != 0 and "--format zarr" in capsys.readouterr().err


def test_memory_and_file_urls(tmp_path):
    data = make_dataset(tmp_path / "in", n_targets=1, n_backgrounds=2, frame_shape=(24, 30),
                        seed=8)
    local = daskbkg.subtract_background(data.targets[0], data.backgrounds).compute()
    mem = fsspec.filesystem("memory")
    urls = []
    for path in (*data.targets, *data.backgrounds):
        mem.pipe(f"/daskbkg/{path.name}", path.read_bytes())
        urls.append(f"memory://daskbkg/{path.name}")
    _same(daskbkg.subtract_background(urls[0], urls[1:]).compute(), local)
    file_urls = [f"file://{p}" for p in (*data.targets, *data.backgrounds)]
    _same(daskbkg.subtract_background(file_urls[0], file_urls[1:]).compute(), local)
