"""Campaigns: many products in one run, every product in flight, nothing finished lost.

* :mod:`.items` expands associations, list files, globs and targets into products;
* :mod:`.jobs` is what runs on a worker: one product's whole life (headers, checks,
  computation, files, completion marker), and a shared combined background;
* :mod:`.backends` runs jobs on a dask.distributed cluster or on local threads or
  processes;
* :mod:`.engine` keeps a bounded window of products in flight and records outcomes;
* :mod:`.markers`, :mod:`.outcome` and :mod:`.progress`: resume, reports, progress.
"""

from .engine import Campaign, CampaignInterrupted
from .items import CampaignItem, items_from_inputs
from .outcome import CampaignReport, Outcome

__all__ = ["Campaign", "CampaignInterrupted", "CampaignItem", "CampaignReport", "Outcome",
           "items_from_inputs"]
