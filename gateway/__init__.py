"""Corral: an OpenAI-compatible gateway for Llama 4 Scout and Maverick."""

__version__ = "0.1.0"
