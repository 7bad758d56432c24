"""The ``m3cvc`` command line.

Each sub-command is a ``main(argv) -> int`` function in its own module, registered by name in
:data:`COMMANDS` and imported only when used. Errors a user can cause print one line and exit 2;
set ``M3CVC_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import warnings
from typing import Any, Callable, Optional, Sequence

from .errors import M3cvcError

# name -> ("module:function", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "encode": ("m3cvc.commands.codec:encode_main", "encode a video into an .m3c bitstream"),
    "decode": ("m3cvc.commands.codec:decode_main", "decode an .m3c bitstream into a video"),
    "preprocess": ("m3cvc.commands.codec:preprocess_main", "write exactly the frames the encoder sees"),
    "info": ("m3cvc.commands.codec:info_main", "describe an .m3c bitstream (header, keyframes, bytes, bpp)"),
    "config": ("m3cvc.commands.codec:config_main", "print a profile's full default config as YAML"),
    "batch": ("m3cvc.commands.batch:main", "encode or decode every file of a folder (process pool or Ray), with a manifest"),
    "dataset": ("m3cvc.commands.dataset:main", "build a keyframe image + text training set from a folder of videos"),
    "train": ("m3cvc.commands.train:main", "train the generative keyframe codec (keyframe-encoder, keyframe-decoder)"),
    "describe": ("m3cvc.commands.describe:main", "select keyframes and describe them with a VLM dialogue (JSON transcript)"),
    "edit": ("m3cvc.commands.edit:main", "replace the descriptions in an .m3c bitstream, keeping every other byte"),
    "eval": ("m3cvc.commands.eval:eval_main", "run m3cvc and x264/x265/VVC anchors over a dataset: bpp, LPIPS, DISTS, VMAF, PSNR, MS-SSIM"),
    "metrics": ("m3cvc.commands.eval:metrics_main", "list the quality metrics, which can run here and why not, and their weights"),
    "bdrate": ("m3cvc.commands.eval:bdrate_main", "BD-rate / BD-quality against an anchor from eval results (+ R-D plots)"),
    "ablate": ("m3cvc.commands.eval:ablate_main", "the paper's Table I ablations as configs, BD-rate vs VVC"),
    "report": ("m3cvc.commands.report:report_main", "an HTML page of a stream (video, keyframes, texts, bits) or of eval results"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: m3cvc COMMAND [options]   (m3cvc COMMAND -h for a command's options)", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def resolve(name: str) -> Callable[[Sequence[str]], int]:
    target, _ = COMMANDS[name]
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class _Warnings(logging.Handler):
    """The library's warnings (``logging.getLogger("m3cvc")``), one line each on stderr: ``PROG: warning: ...``."""

    def __init__(self, prog: str) -> None:
        super().__init__(logging.WARNING)
        self.prog = prog

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{self.prog}: warning: {record.getMessage()}"
        try:
            try:
                from tqdm import tqdm  # a progress bar may be on the line: print above it

                tqdm.write(line, file=sys.stderr)
            except ImportError:
                print(line, file=sys.stderr)
        except Exception:  # never let a warning break the command
            pass


def run(fn: Callable[[Sequence[str]], int], argv: Sequence[str], prog: str = "m3cvc") -> int:
    """Call a command, turning user errors into one line on stderr and a non-zero exit code; the
    library's warnings are printed as one line each."""
    logger = logging.getLogger("m3cvc")
    handler = _Warnings(prog)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    previous = _on_sigterm()
    saved = _quiet_libraries() if any(a in ("-q", "--quiet") for a in argv) else None
    try:
        return _run(fn, argv, prog)
    finally:
        logger.removeHandler(handler)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if saved is not None:
            _restore_env(saved)


_QUIET_ENV = {"TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error",
              "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}  # fmt: skip


def _quiet_libraries() -> dict[str, Optional[str]]:
    """``-q``: silence the model libraries' own progress bars and advice too (tqdm, transformers, diffusers,
    huggingface_hub read these variables); returns the values to restore."""
    saved: dict[str, Any] = {k: os.environ.get(k) for k in _QUIET_ENV}
    os.environ.update(_QUIET_ENV)
    saved["warnings"] = list(warnings.filters)
    for module in ("huggingface_hub", "diffusers", "transformers"):  # their deprecation advice to us, not to users
        warnings.filterwarnings("ignore", module=module + r"(\.|$)")
    for module in ("transformers", "diffusers"):  # already imported: their loggers read the variables once
        if module in sys.modules:
            try:
                utils = importlib.import_module(f"{module}.utils.logging")
                saved[module] = (utils.get_verbosity(), utils.is_progress_bar_enabled())
                utils.set_verbosity_error()
                utils.disable_progress_bar()
            except (ImportError, AttributeError):
                pass
    return saved


def _restore_env(saved: dict[str, Any]) -> None:
    warnings.filters[:] = saved["warnings"]
    for key in _QUIET_ENV:
        if saved[key] is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved[key]
    for module in ("transformers", "diffusers"):
        if module in saved:
            utils = importlib.import_module(f"{module}.utils.logging")
            verbosity, bars = saved[module]
            utils.set_verbosity(verbosity)
            if bars:
                utils.enable_progress_bar()


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``): unwinds like Ctrl-C, so partial outputs are removed."""


def _on_sigterm() -> Any:
    def handler(signum: int, frame: Any) -> None:
        raise _Terminated()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return None


def _run(fn: Callable[[Sequence[str]], int], argv: Sequence[str], prog: str) -> int:
    debug = os.environ.get("M3CVC_DEBUG") == "1"
    try:
        return int(fn(argv) or 0)
    except M3cvcError as exc:
        if debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `m3cvc info x.m3c | head`: the reader left, that is fine
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 0
    except _Terminated:
        print(f"{prog}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{prog}: error: out of memory", file=sys.stderr)
        return 1
    except Exception as exc:  # an unexpected failure still gets one line, not a traceback
        if debug:
            raise
        print(f"{prog}: error: {type(exc).__name__}: {exc} (set M3CVC_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from . import __version__

        print(f"m3cvc {__version__}")
        return 0
    name = args[0]
    if name not in COMMANDS:
        print(f"m3cvc: error: unknown command {name!r}\n{_usage()}", file=sys.stderr)
        return 2
    return run(resolve(name), args[1:], prog=f"m3cvc {name}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
