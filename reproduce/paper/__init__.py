"""Tables and figures of the paper, regenerated from ``results/`` alone (see ``build.build_paper``)."""
