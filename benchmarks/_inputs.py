"""Shared argument handling of the floor and baseline programs: targets and backgrounds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def products(argv=None) -> tuple[list[tuple[str, list[str]]], Path]:
    """Parse ``[--asn ASN | TARGET BKG...] --output-dir OUT`` into (target, backgrounds) pairs."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--asn", default=None)
    parser.add_argument("files", nargs="*")
    args = parser.parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if args.asn:
        asn = json.loads(Path(args.asn).read_text())
        folder = Path(args.asn).parent
        pairs = []
        for prod in asn["products"]:
            sci = [str(folder / m["expname"]) for m in prod["members"] if m["exptype"] == "science"]
            bkg = [str(folder / m["expname"]) for m in prod["members"]
                   if m["exptype"] == "background"]
            pairs.append((sci[0], bkg))
        return pairs, args.output_dir
    return [(args.files[0], args.files[1:])], args.output_dir
