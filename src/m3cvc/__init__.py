"""m3cvc: controllable ultra-low-bitrate video compression with multimodal generative models."""

__version__ = "0.1.0"
