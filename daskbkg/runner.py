"""One-call helpers over :class:`daskbkg.campaign.Campaign`: one target, one association.

The settings live in :mod:`daskbkg.settings` and the outcomes in
:mod:`daskbkg.campaign.outcome`; both are re-exported here for existing imports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .campaign import Campaign, CampaignItem, Outcome
from .campaign.items import as_input
from .settings import RunSettings, WfssSettings

__all__ = ["RunSettings", "WfssSettings", "Outcome", "run_target", "run_association"]


def run_target(target: Any, backgrounds: Sequence[Any], settings: RunSettings,
               compute_kwargs: dict | None = None, *, resume: bool = False) -> Outcome:
    """Process one target file with its backgrounds and write its outputs."""
    item = CampaignItem(Path(str(target)).name, as_input(target),
                        tuple(as_input(b) for b in backgrounds))
    return Campaign([item], settings, resume=resume).run(compute_kwargs).outcomes[0]


def run_association(asn: Any, settings: RunSettings, compute_kwargs: dict | None = None, *,
                    resume: bool = False) -> list[Outcome]:
    """Process every product of a level-2 association (each fails alone)."""
    return Campaign.from_inputs([str(asn)], settings, resume=resume).run(compute_kwargs).outcomes
