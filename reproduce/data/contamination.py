"""N-gram decontamination at the token level: which evaluation items share an n-token sequence with the train split.

GPT-3's check (Brown et al. 2020, appendix C) on token ids instead of words: an evaluation item is *contaminated*
when one of its n-token sequences (13 by default) occurs anywhere in the training tokens. Items shorter than n
tokens but at least ``min_tokens`` long are matched whole; shorter ones are not checked ("too short").

- The items are the distinct texts of each set (reproduce/data/eval_items.py).
- Each text is tokenized twice, as is and after a space: in running text a sentence usually follows a space,
  which a byte-level BPE attaches to the next word, so its tokens differ from those of the bare sentence.
- ``EvalNgrams`` keeps, for each key length, the sorted unique 64-bit hashes of the items' n-grams and which item
  holds which key; ``scan`` looks the train split's windows up chunk by chunk (exact across chunk boundaries) and
  ``contains_any`` tests one train document (``prepare``'s ``contamination.drop``).

Only numpy and the package's own light modules are imported: this module is loaded by tokenizing workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from reproduce.core.errors import UserError
from reproduce.data.eval_items import Item, read_items

if TYPE_CHECKING:
    from reproduce.config.schema import ContaminationConfig

TEST_WORKS = "test_works"  # the set name of the corpus's test documents in the report
EXAMPLES = 5  # contaminated item ids listed per set
_PIECE = 1 << 20  # train windows hashed at a time
_ENCODE_BATCH = 8192  # texts passed to ``encode`` at a time

# ------------------------------------------------------------------------------------------------------ hashing


def _splitmix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (a bijection of uint64 with good avalanche), wrapping uint64 arithmetic."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _multipliers(n: int) -> np.ndarray:
    """The fixed odd 64-bit multiplier of each window position: splitmix64 of (seed + position), made odd."""
    seed = np.uint64(0x5EED_C0DE_13_0000)
    return _splitmix(np.arange(n, dtype=np.uint64) + seed) | np.uint64(1)


def _prefix_hashes(tokens: np.ndarray, lengths: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(L, hash of every window of L tokens) for each L of ``lengths`` in ascending order, in one pass over the
    window positions; each array is a view, valid until the next one is asked for.

    The hash of a window is sum_j M_j * mix(t_j) over its positions j, wrapping at 2^64, with fixed odd random
    multipliers M_j and splitmix64 as the token mix, so two different windows collide with probability ~2^-64,
    and the hash of an L-window is a partial sum of that of a longer window starting at the same token.
    """
    total, wanted = len(tokens), sorted(set(lengths))
    if total < wanted[0]:
        for length in wanted:
            yield length, np.empty(0, dtype=np.uint64)
        return
    mixed = _splitmix(np.asarray(tokens).astype(np.uint64))
    mult = _multipliers(wanted[-1])
    acc = np.zeros(total - wanted[0] + 1, dtype=np.uint64)  # one running sum per window of the shortest length
    for j in range(wanted[-1]):
        windows = min(len(acc), total - j)  # windows that have a token at position j
        if windows > 0:
            acc[:windows] += mixed[j:j + windows] * mult[j]
        if j + 1 in wanted:
            yield j + 1, acc[:max(total - j, 0)]


def ngram_hashes(tokens: np.ndarray, n: int) -> np.ndarray:
    """The uint64 hash of every window of ``n`` consecutive token ids (``len(tokens) - n + 1`` values)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    tokens = np.asarray(tokens)
    if len(tokens) < n:
        return np.empty(0, dtype=np.uint64)
    return next(_prefix_hashes(tokens, [n]))[1]


# ----------------------------------------------------------------------------------------------- the key store


def _unique(values: np.ndarray, inverse: bool = False) -> Any:
    """Sorted unique values (and where each value went), by sorting: numpy's hash-based unique is slower here."""
    order = np.argsort(values, kind="stable") if inverse else None
    ordered = values[order] if inverse else np.sort(values)
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    unique = ordered[first]
    if not inverse:
        return unique
    where = np.empty(len(values), dtype=np.int64)
    where[order] = np.cumsum(first) - 1
    return unique, where


class EvalNgrams:
    """The n-grams of every item of every set (picklable: numpy arrays and small lists; sent to worker processes)."""

    def __init__(self, n: int, min_tokens: int, sets: list[str], item_ids: list[str], item_set: np.ndarray,
                 keys: dict[int, np.ndarray], pair_key: dict[int, np.ndarray], pair_item: dict[int, np.ndarray]):
        self.n, self.min_tokens = n, min_tokens
        self.sets, self.item_ids, self.item_set = sets, item_ids, item_set
        self.keys = keys  # key length -> sorted unique uint64 hashes
        self.pair_key, self.pair_item = pair_key, pair_item  # key length -> (index into keys, item) of each holding
        self.found = {length: np.zeros(len(k), dtype=bool) for length, k in keys.items()}
        self.train_tokens = 0
        self._tail = np.empty(0, dtype=np.int64)  # the last (longest key - 1) tokens of the previous chunk
        self._filters: dict[int, tuple[np.ndarray, np.uint64]] | None = None

    # -- building

    @classmethod
    def build(cls, items: dict[str, list[Item]], encode: Callable[[list[str]], list[list[int]]], n: int,
              min_tokens: int, *, tokenized: Mapping[str, Sequence[tuple[str, np.ndarray]]] | None = None
              ) -> EvalNgrams:
        """Encode every item's texts (as is, and after a space) and hash their n-grams.

        ``tokenized``: further sets whose items are given as (id, token ids), one sequence an item (the test documents).
        """
        if n < 1 or min_tokens < 1:
            raise UserError(f"contamination.n ({n}) and contamination.min_tokens ({min_tokens}) must be at least 1")
        tokenized = tokenized or {}
        if clash := sorted(set(items) & set(tokenized)):
            raise UserError(f"contamination.sets.{clash[0]}: the name is taken by the report's own set; rename it")
        sets = list(items) + list(tokenized)
        item_ids: list[str] = []
        item_set: list[int] = []
        texts: list[str] = []
        text_item: list[int] = []
        for s, name in enumerate(items):
            for item in items[name]:
                for text in item.texts:
                    if text:
                        texts += [text, " " + text]
                        text_item += [len(item_ids)] * 2
                item_ids.append(item.id)
                item_set.append(s)
        distinct = list(dict.fromkeys(texts))  # each distinct text encoded once, a batch at a time (bounded memory)
        by_text: dict[str, np.ndarray] = {}
        for start in range(0, len(distinct), _ENCODE_BATCH):
            batch = distinct[start:start + _ENCODE_BATCH]
            encoded = encode(batch)
            if len(encoded) != len(batch):
                raise ValueError(f"encode returned {len(encoded)} sequences for {len(batch)} texts")
            by_text.update((text, np.asarray(ids, dtype=np.int64)) for text, ids in zip(batch, encoded, strict=True))
        seqs = [by_text[text] for text in texts]
        for s, name in enumerate(tokenized, start=len(items)):
            for item_id, ids in tokenized[name]:
                seqs.append(np.asarray(ids).astype(np.int64, copy=False))
                text_item.append(len(item_ids))
                item_ids.append(f"{name}:{item_id}")
                item_set.append(s)
        return cls._from_sequences(n, min_tokens, sets, item_ids, np.asarray(item_set, dtype=np.int32), seqs,
                                   np.asarray(text_item, dtype=np.int64))

    @classmethod
    def _from_sequences(cls, n: int, min_tokens: int, sets: list[str], item_ids: list[str], item_set: np.ndarray,
                        seqs: list[np.ndarray], seq_item: np.ndarray) -> EvalNgrams:
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(seqs) else lengths
        flat = np.concatenate(seqs) if seqs else np.empty(0, dtype=np.int64)
        whole = sorted({int(x) for x in lengths if min_tokens <= x < n})  # texts matched whole, by length
        found: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # length -> (hashes, item of each)
        key_lengths = [*whole, n]
        if len(flat) >= min(key_lengths):
            for length, hashes in _prefix_hashes(flat, key_lengths):
                if length < n:
                    sel = np.flatnonzero(lengths == length)
                    found[length] = (hashes[starts[sel]], seq_item[sel])
                else:
                    sel = np.flatnonzero(lengths >= n)
                    count = lengths[sel] - n + 1  # windows of each long sequence
                    window_seq = np.repeat(sel, count)
                    offset = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
                    found[length] = (hashes[starts[window_seq] + offset], seq_item[window_seq])
        n_items = max(len(item_ids), 1)
        keys, pair_key, pair_item = {}, {}, {}
        for length in sorted(found):
            hashes, owners = found[length]
            if not len(hashes):
                continue
            unique, inverse = _unique(hashes, inverse=True)
            pairs = _unique(inverse * n_items + owners)
            keys[length] = unique
            pair_key[length] = (pairs // n_items).astype(np.int32 if len(unique) < 2**31 else np.int64)
            pair_item[length] = (pairs % n_items).astype(np.int32)
        return cls(n, min_tokens, sets, item_ids, item_set, keys, pair_key, pair_item)

    # -- looking up

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_filters": None}  # the lookup filters are rebuilt where they are used

    def _filter(self) -> dict[int, tuple[np.ndarray, np.uint64]]:
        """Per key length, a bytemap indexed by a hash's top bits (about 1 in 16 slots set) and its shift: a
        train window whose slot is empty holds no key, so only the few others are searched for."""
        if self._filters is None:
            self._filters = {}
            for length, keys in self.keys.items():
                bits = min(max((len(keys) * 16).bit_length(), 16), 26)
                shift = np.uint64(64 - bits)
                table = np.zeros(1 << bits, dtype=bool)
                table[keys >> shift] = True
                self._filters[length] = (table, shift)
        return self._filters

    def _matches(self, tokens: np.ndarray) -> Iterable[tuple[int, np.ndarray]]:
        """(key length, indices into ``keys[length]`` of every key occurring in ``tokens``), per key length."""
        if not self.keys or len(tokens) < min(self.keys):
            return
        filters, lengths = self._filter(), sorted(self.keys)
        for start in range(0, max(len(tokens) - lengths[0] + 1, 1), _PIECE):  # bounded memory
            piece = tokens[start:start + _PIECE + lengths[-1] - 1]
            for length, hashes in _prefix_hashes(piece, lengths):
                table, shift = filters[length]
                candidates = hashes[table[hashes >> shift]]
                if not len(candidates):
                    continue
                keys = self.keys[length]
                at = np.minimum(np.searchsorted(keys, candidates), len(keys) - 1)
                hit = at[keys[at] == candidates]
                if len(hit):
                    yield length, hit

    def contains_any(self, tokens: np.ndarray) -> bool:
        """Whether a token sequence (a train document) contains any key of any item, of any length."""
        return any(True for _ in self._matches(np.asarray(tokens)))

    def scan(self, tokens: np.ndarray) -> None:
        """Record which keys occur in the next chunk of the train split (windows across chunk boundaries too)."""
        tokens = np.asarray(tokens)
        self.train_tokens += len(tokens)
        if not self.keys:
            return
        keep = max(self.keys) - 1
        # the windows that start in the previous chunks' last tokens, then those of this chunk (no copy of it)
        seam = np.concatenate([self._tail, np.asarray(tokens[:keep], dtype=np.int64)])
        for part in (seam, tokens):
            for length, hit in self._matches(part):
                self.found[length][hit] = True
        last = tokens if len(tokens) >= keep else seam  # a chunk shorter than the tail extends it
        self._tail = np.asarray(last[len(last) - min(keep, len(last)):], dtype=np.int64)

    # -- reporting

    def report(self) -> dict[str, Any]:
        """Per set: items, checked (items with at least one key), too_short, contaminated, share, distinct
        n-grams and how many of them were found, and up to five contaminated item ids."""
        n_items = len(self.item_ids)
        checked = np.zeros(n_items, dtype=bool)
        dirty = np.zeros(n_items, dtype=bool)
        ngrams = np.zeros(len(self.sets), dtype=np.int64)
        ngrams_found = np.zeros(len(self.sets), dtype=np.int64)
        for length, keys in self.pair_key.items():
            items = self.pair_item[length]
            checked[items] = True
            hit = self.found[length][keys]
            dirty[items[hit]] = True
            # distinct keys per set: (set, key) pairs, once each
            set_key = _unique(self.item_set[items].astype(np.int64) * len(self.keys[length]) + keys)
            owner, key = set_key // len(self.keys[length]), set_key % len(self.keys[length])
            ngrams += np.bincount(owner, minlength=len(self.sets))
            ngrams_found += np.bincount(owner[self.found[length][key]], minlength=len(self.sets))
        out: dict[str, Any] = {}
        for s, name in enumerate(self.sets):
            mine = self.item_set == s
            n_checked, n_dirty = int(checked[mine].sum()), int(dirty[mine].sum())
            out[name] = {
                "items": int(mine.sum()),
                "checked": n_checked,
                "too_short": int(mine.sum()) - n_checked,
                "contaminated": n_dirty,
                "share": n_dirty / n_checked if n_checked else None,
                "ngrams": int(ngrams[s]),
                "ngrams_found": int(ngrams_found[s]),
                "examples": [self.item_ids[i] for i in np.flatnonzero(mine & dirty)[:EXAMPLES]],
            }
        return out


# ------------------------------------------------------------------------------------------------------ report


def batch_encoder(tokenizer: Any) -> Callable[[list[str]], list[list[int]]]:
    """``encode`` for ``EvalNgrams.build``: a Hugging Face fast tokenizer's ids of a batch, without special tokens."""
    backend = tokenizer.backend_tokenizer
    return lambda batch: [e.ids for e in backend.encode_batch(batch, add_special_tokens=False)]


def contamination_report(cfg: ContaminationConfig, resolver: Any, encode: Callable[[list[str]], list[list[int]]],
                         train_chunks: Iterable[np.ndarray],
                         test_works: Iterable[tuple[str, np.ndarray]] | None) -> dict[str, Any]:
    """Every set's items (and the test documents, one item each, unless None) against the train split's tokens."""
    items = {str(name): read_items(str(name), texts, resolver) for name, texts in cfg.sets.items()}
    tokenized = {TEST_WORKS: list(test_works)} if test_works is not None else None
    ngrams = EvalNgrams.build(items, encode, int(cfg.n), int(cfg.min_tokens), tokenized=tokenized)
    for chunk in train_chunks:
        ngrams.scan(chunk)
    return {"n": int(cfg.n), "min_tokens": int(cfg.min_tokens), "train_tokens": int(ngrams.train_tokens),
            "sets": ngrams.report()}
