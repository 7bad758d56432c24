"""Writing a report: a page ``NAME.html`` and its files in ``NAME_files/`` beside it, built in a
temporary folder and moved into place when complete, so a failed or interrupted run leaves the
previous report as it was and a reader never sees half of one.

Pages are rendered with Jinja2 (autoescaped); styles and scripts are inlined, media are files in
``NAME_files/`` referenced by relative URLs, so the page works from the file system and from any
static web server, with no network access.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from ..errors import BackendError, InputError
from ..fileio import check_output_path

GENERATOR = "m3cvc report"


def environment() -> Any:
    """The Jinja2 environment of the shipped templates (BackendError if Jinja2 is not installed)."""
    try:
        import jinja2
    except ImportError:
        raise BackendError("reports need Jinja2 and matplotlib: pip install 'm3cvc[report]'") from None
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("m3cvc.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    from .. import __version__

    env.globals["asset_text"] = asset_text
    env.globals["version"] = __version__
    env.filters["fmt"] = _fmt
    return env


def asset_text(name: str) -> str:
    """A shipped static file (``report.css``, ``report.js``) as text, to inline into a page."""
    return (resources.files("m3cvc.report") / "templates" / name).read_text(encoding="utf-8")


def _fmt(value: Any, digits: int = 3) -> str:
    """Numbers for tables: None -> n/a, floats with ``digits`` decimals, the rest as text."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def is_report(path: Path) -> bool:
    """Whether ``path`` is a page an earlier ``m3cvc report`` wrote (it may be replaced without -y)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return f'<meta name="generator" content="{GENERATOR}'.encode() in head


class Site:
    """A report under construction: ``with Site(out) as site: ...; site.finish(html)``.

    ``site.media`` is the (temporary) folder the page's files go to; ``site.url(name)`` the relative
    URL the page uses for one of them. Leaving the block without :meth:`finish` discards everything.
    """

    def __init__(self, output: Any, inputs: Iterable[Any] = (), overwrite: bool = False) -> None:
        parent = Path(output).parent
        try:  # `-o report/index.html` makes report/
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the report's folder {parent}: {exc.strerror or exc}") from None
        out = check_output_path(output, inputs)
        if out.suffix.lower() not in (".html", ".htm"):
            raise InputError(f"report output {out} must be an .html file (its media go beside it in {out.stem}_files/)")
        if out.exists() and not (overwrite or is_report(out)):
            raise InputError(f"output {out} exists and is not an m3cvc report; pass --overwrite (-y) to replace it")
        self.output = out
        self.media_name = f"{out.stem}_files"
        for p in (str(x) for x in inputs):
            if Path(p).resolve().is_relative_to((out.parent / self.media_name).resolve()):
                raise InputError(f"input {p} lies inside the report's media folder {out.parent / self.media_name}")
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
        self.media = self._tmp / self.media_name
        self.media.mkdir()
        self._done = False

    def url(self, name: str) -> str:
        return f"{self.media_name}/{name}"

    def finish(self, html: str) -> Path:
        """Put the media folder and then the page in place (the page last: it is what a reader opens)."""
        page = self._tmp / self.output.name
        page.write_text(html, encoding="utf-8")
        final_media = self.output.parent / self.media_name
        old = self._tmp / ".previous"
        if final_media.is_dir() and not final_media.is_symlink():
            os.rename(final_media, old)
        elif final_media.exists() or final_media.is_symlink():
            raise InputError(f"{final_media} exists and is not a folder; move it away first")
        os.rename(self.media, final_media)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(page, 0o666 & ~mask)
        os.replace(page, self.output)
        self._done = True
        return self.output

    def __enter__(self) -> "Site":
        return self

    def __exit__(self, *exc: Any) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

