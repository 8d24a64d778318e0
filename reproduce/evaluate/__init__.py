"""Evaluation: perplexity and bits per byte on held-out works, and lm-eval benchmarks."""
