"""Writing a report: a page ``NAME.html`` and its files in ``NAME_files/`` beside it, built in a
temporary folder and moved into place when complete, so a failed or interrupted run leaves the
previous report as it was and a reader never sees half of one.

Pages are rendered with Jinja2 (autoescaped); styles and scripts are inlined, media are files in
``NAME_files/`` referenced by relative URLs, so the page works from the file system and from any
static web server, with no network access.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

from ..errors import BackendError, InputError
from ..fileio import _umask, check_output_path

GENERATOR = "m3cvc report"


@functools.lru_cache(maxsize=1)
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


MARKER = ".m3cvc-report"  # in every media folder a report wrote: it may be replaced without -y


def resolve_output(output: Any) -> Path:
    """``-o DIR/`` or an existing folder means ``DIR/index.html``; anything else must end in .html."""
    text = str(output)
    out = Path(output)
    if text.endswith(("/", os.sep)) or out.is_dir():
        out = out / "index.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"report output {out} must be an .html file or a folder (the media go beside the page in {out.stem}_files/)")
    return out


class Site:
    """A report under construction: ``with Site(out) as site: ...; site.finish(html)``.

    ``site.media`` is the (temporary) folder the page's files go to; ``site.url(name)`` the relative,
    percent-encoded URL the page uses for one of them. Leaving the block without :meth:`finish`
    discards everything, including folders it created for the output. An existing page or media
    folder is replaced only if an earlier report wrote it, or with ``overwrite``; inputs may not lie
    in the media folder (it is replaced whole).
    """

    def __init__(self, output: Any, inputs: Iterable[Any] = (), overwrite: bool = False) -> None:
        out = resolve_output(output)
        media = out.parent / f"{out.stem}_files"
        for p in (Path(str(x)) for x in inputs):
            if p.resolve().is_relative_to(media.resolve()):
                raise InputError(f"input {p} lies in the report's media folder {media}, which a report replaces; "
                                 "write the report elsewhere")  # fmt: skip
        if media.is_symlink() or (media.exists() and not media.is_dir()):
            raise InputError(f"{media} exists and is not a folder; the report's media go there: move it away first")
        if media.is_dir() and not overwrite and not (media / MARKER).is_file():
            raise InputError(f"{media} exists and was not written by m3cvc report; pass --overwrite (-y) to replace it")
        self._made: list[Path] = []
        missing = [d for d in [out.parent, *out.parent.parents] if not d.exists()]
        try:  # `-o report/index.html` makes report/
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the report's folder {out.parent}: {exc.strerror or exc}") from None
        self._made = missing  # removed again if the report fails
        try:
            out = check_output_path(out, inputs)
            if out.exists() and not (overwrite or is_report(out)):
                raise InputError(f"output {out} exists and is not an m3cvc report; pass --overwrite (-y) to replace it")
            try:
                self._tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
            except OSError as exc:
                raise InputError(f"cannot write in {out.parent}: {exc.strerror or exc}") from None
        except BaseException:
            self._remove_made()
            raise
        self.output = out
        self.media_name = media.name
        self.media = self._tmp / self.media_name
        self.media.mkdir()
        (self.media / MARKER).write_text("written by m3cvc report; replaced whole by the next report here\n")
        self._done = False

    def url(self, name: str) -> str:
        return quote(f"{self.media_name}/{name}")

    def finish(self, html: str) -> Path:
        """Put the media folder and then the page in place (the page last: it is what a reader opens)."""
        page = self._tmp / self.output.name
        page.write_text(html, encoding="utf-8")
        final_media = self.output.parent / self.media_name
        old = self._tmp / ".previous"
        if final_media.is_dir() and not final_media.is_symlink():
            os.rename(final_media, old)
        elif final_media.exists() or final_media.is_symlink():  # appeared while the report was built
            raise InputError(f"{final_media} exists and is not a folder; move it away first")
        os.rename(self.media, final_media)
        os.chmod(page, 0o666 & ~_umask())
        os.replace(page, self.output)
        self._done = True
        return self.output

    def _remove_made(self) -> None:
        for d in self._made:  # deepest first
            try:
                d.rmdir()
            except OSError:
                break

    def __enter__(self) -> "Site":
        return self

    def __exit__(self, *exc: Any) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)
        if not self._done:
            self._remove_made()
