"""Tables and figures of the paper, regenerated from ``results/`` alone (see ``build.build_paper``)."""

from reproduce.paper.build import build_paper

__all__ = ["build_paper"]
