"""Text channel coders (LZW as in the paper, raw, corpus-primed PPM); ``encode_texts`` picks the smallest."""

from .base import (
    TextCoder,
    decode_texts,
    encode_texts,
    get_text_coder,
    register_text_coder,
    text_codec_name,
    text_coder_names,
)
from .lzw import LZWCoder, RawCoder, lzw_decode, lzw_encode
from .ppm import PPMCoder

register_text_coder(RawCoder())
register_text_coder(LZWCoder())
register_text_coder(PPMCoder())

__all__ = [
    "TextCoder",
    "decode_texts",
    "encode_texts",
    "get_text_coder",
    "register_text_coder",
    "text_codec_name",
    "text_coder_names",
    "lzw_encode",
    "lzw_decode",
]
