"""Data: sources and manifest, decoding, splits, tokenizer, token shards, packed sequences and their order."""
