"""Evaluation: perplexity and bits per byte on held-out documents, and lm-eval benchmarks."""
