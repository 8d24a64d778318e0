"""Reproduction package for ruGPT-3 (Zmitrovich et al., arXiv 2309.10931)."""

__version__ = "0.2.0"
