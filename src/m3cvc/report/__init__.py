"""Report pages (``m3cvc report``): self-contained HTML that shows what a stream kept, where its bits
went and how close it decodes, and what an eval run measured (R-D plots, BD-rate tables).

``stream``: one ``.m3c`` page; ``evaluation``: a results folder's page; ``site``: atomic output and
templates; ``media``: browser videos and thumbnails; ``charts``: SVG figures. Needs the ``report``
extra (Jinja2, matplotlib).
"""

from __future__ import annotations

from .stream import DEFAULT_METRICS, write_stream_report

__all__ = ["DEFAULT_METRICS", "write_stream_report"]
