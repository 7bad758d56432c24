"""Test setup (called by ``make test``): the five LPIPS / DISTS calibration image pairs of pyiqa.

pyiqa ships them as ``ResultsCalibra/{ref_dir,dist_dir}/I0x.bmp`` inside its wheel, with published
LPIPS / DISTS values for them. pyiqa is PolyForm-Noncommercial licensed, so the images are not copied
into this MIT repository: the pinned wheel is downloaded from PyPI without its dependencies (once,
cached next to the output) and only ``ResultsCalibra/`` is extracted.

    python tests/fetch_calibration.py .venv/calibration     # -> .venv/calibration/ResultsCalibra/...
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "pyiqa-0.1.16-py3-none-any.whl"
WHEEL_SHA256 = "42bbcf1c274a8b53f040a3ec5ec304a15b7725afb5a85b81050e9cc7e6d09ed4"


def main(dest: Path) -> int:
    target = dest / "ResultsCalibra"
    if (target / "ref_dir" / "I19.bmp").is_file() and (target / "dist_dir" / "I19.bmp").is_file():
        return 0
    cache = dest / "wheel"
    wheel = cache / WHEEL
    if not wheel.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "pyiqa==0.1.16", "-d", str(cache)]
        subprocess.run(cmd, check=True)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        print(f"fetch_calibration: {wheel} has sha256 {digest}, expected {WHEEL_SHA256}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(dir=dest) as tmp, zipfile.ZipFile(wheel) as zf:
        members = [n for n in zf.namelist() if n.startswith("ResultsCalibra/") and n.endswith(".bmp")]
        zf.extractall(tmp, members)
        shutil.rmtree(target, ignore_errors=True)  # a partial earlier extraction
        Path(tmp, "ResultsCalibra").rename(target)
    print(f"calibration pairs: {len(members) // 2} in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".venv/calibration")))
