"""Training: one stage at a time (stage.py), its checkpoints and resume (checkpoint.py), progress and curves."""
