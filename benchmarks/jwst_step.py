r"""Run the reference pipeline's BackgroundStep on targets (benchmark contender).

Run by the interpreter of a virtual environment holding the jwst package (not daskbkg's;
see ``benchmarks/run.py --jwst``)::

    /path/to/jwst-venv/bin/python benchmarks/jwst_step.py --output-dir OUT \\
        --bkg BKG1 BKG2 ... -- TARGET [TARGET ...]

Offline: non-WFSS modes need no reference file, step parameters are not fetched
(``STPIPE_DISABLE_CRDS_STEPPARS``) and the CRDS server is set to an unreachable loopback
address, so nothing leaves the machine. Each target is processed by its own call of
the step, one after the other in this process, as a pipeline run over a list would; the
products are saved like the step's own (``<root>_backgroundstep.fits``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--bkg", nargs="+", required=True)
    parser.add_argument("targets", nargs="+")
    args = parser.parse_args(argv)
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "True")
    os.environ.setdefault("CRDS_SERVER_URL", "http://127.0.0.1:9")
    os.environ.setdefault("CRDS_PATH", tempfile.mkdtemp(prefix="crds-offline-"))
    os.makedirs(args.output_dir, exist_ok=True)
    from jwst.background import BackgroundStep

    for target in args.targets:
        BackgroundStep.call(target, bkg_list=list(args.bkg), save_results=True,
                            output_dir=args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
