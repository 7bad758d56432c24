"""``m3cvc edit IN.m3c --descriptions new.json -o OUT.m3c``: replace the texts of a bitstream.

Only the two text units are rewritten; the magic, the sequence header and every keyframe unit
are copied byte for byte (in format 4, which leaves the text units out while every text is empty,
the header's texts flag is set or cleared), so a user can steer the decoder (paper:
controllability) without re-encoding. Entries of ``new.json`` replace the texts in order; texts
past the end of a list are kept. A transcript written by ``m3cvc describe`` is accepted as
``new.json`` too.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Sequence

from ..bitstream import UnitType, _header_payload, _unit, has_texts, parse_units, read_stream
from ..describe import Descriptions
from ..fileio import write_bytes_atomic
from ..pipeline import clip_motions
from ..text import encode_texts, get_text_coder
from .codec import _parser, _read_input, check_new_output

HEADER_BYTES = 5  # magic + format version


def _merge(old: Sequence[str], new: Sequence[str]) -> tuple[str, ...]:
    return tuple(new) + tuple(old[len(new) :])


def edit_texts(data: bytes, descriptions: Descriptions, text_codec: str = "auto") -> bytes:
    """``data`` with its text units replaced; every other byte is kept."""
    if text_codec != "auto":
        get_text_coder(text_codec)  # unknown names fail before any work
    stream = read_stream(data)
    clip_motions(stream)  # the motion hints are parsed as decode parses them: a damaged stream is not copied
    n = stream.header.num_keyframes
    descriptions.check_counts(n, n)
    texts = {
        UnitType.KEYFRAME_TEXTS: _merge(stream.keyframe_texts, descriptions.keyframes),
        UnitType.CLIP_TEXTS: _merge(stream.clip_texts, descriptions.clips),
    }
    version = stream.version
    edited = replace(stream, keyframe_texts=texts[UnitType.KEYFRAME_TEXTS], clip_texts=texts[UnitType.CLIP_TEXTS])
    present = has_texts(edited)
    out = bytearray(data[:HEADER_BYTES])
    for unit in parse_units(data):
        if unit.type == UnitType.SEQUENCE_HEADER and version >= 4:  # the texts flag may change
            out += _unit(unit.type, _header_payload(stream.header, version, present))
        elif unit.type not in texts:
            out += data[unit.offset : unit.offset + unit.size]
    if present:  # the text units are the stream's last
        for kind, values in texts.items():
            out += _unit(kind, encode_texts(values, text_codec))
    return bytes(out)


def main(argv: Sequence[str]) -> int:
    p = _parser("edit", "Replace the keyframe / clip descriptions of an .m3c bitstream (other bytes kept).")
    p.add_argument("input", metavar="IN", help=".m3c bitstream")
    p.add_argument("--descriptions", required=True, metavar="FILE",
                   help='JSON/YAML {"keyframes": [...], "clips": [...]} or a describe transcript')
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output .m3c")
    p.add_argument("-y", "--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--text-codec", default="auto", metavar="NAME", help="text coder: auto (smallest), ppm, lzw, raw")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    out = check_new_output(args.output, [args.input, args.descriptions], args.overwrite)
    data = _read_input(args.input)
    edited = edit_texts(data, Descriptions.load(args.descriptions), args.text_codec)
    write_bytes_atomic(out, edited, [args.input])
    summary = {"output": str(out), "bytes_before": len(data), "bytes_after": len(edited), "changed": edited != data}
    if args.json:
        print(json.dumps(summary))
    elif edited == data:  # e.g. empty lists: texts past the end of a list are kept
        print(f"{out}: no text changed ({len(data)} bytes; texts past the end of a list are kept, \"\" empties one)")
    else:
        print(f"{out}: texts replaced, {len(data)} -> {len(edited)} bytes")
    return 0

