"""`reproduce prepare`: the token stream, the index, reuse by hash, mixtures, resume after SIGKILL (byte-identical),
independence from the number of workers, and loud failures on damaged or mismatched shards."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from reproduce.commands.preflight import load
from reproduce.commands.table import COMMANDS
from reproduce.core.errors import UserError
from reproduce.core.io import read_json
from reproduce.data import workers
from reproduce.data.corpus import to_text
from reproduce.data.manifest import make_resolver
from reproduce.data.prepared_set import load_prepared, read_documents, run_prepared
from reproduce.data.records import Record
from reproduce.data.sequences import PackedSequences
from reproduce.data.shard_writer import _chunks
from reproduce.data.shards import HEADER_SIZE, ShardedTokens, write_shard
from reproduce.data.sources import open_source
from reproduce.data.split import seeded_order
from reproduce.recipe.record import start_steps
from tests.helpers import micro_manifest, micro_overrides


def _overrides(tmp: Path, *extra: str, run_name: str = "micro") -> list[str]:
    return [*micro_overrides(tmp, run_name), *extra]


def _prepare(tmp: Path, *extra: str, run_name: str = "micro"):
    """`reproduce prepare` in-process, as the CLI runs it: checked, the config recorded, then the step."""
    from reproduce.commands import data_steps

    cfg = load(COMMANDS["prepare"], _overrides(tmp, *extra, run_name=run_name))
    start_steps(cfg, ("prepare",))
    return cfg, data_steps.prepare(cfg)


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_shards_hold_every_document_in_seeded_chunk_order_with_its_index(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(workers, "PIECE_CHARACTERS", 500)  # documents tokenized in pieces give the same ids
    cfg, data = _prepare(tmp_path)
    assert len(data.shards["train"].shards) > 1  # data.shard_tokens=50000 cuts the micro train split
    assert all(len(s) == 50000 for s in data.shards["train"].shards[:-1])
    tokenizer = AutoTokenizer.from_pretrained(data.folder / "tokenizer")
    rows = list(read_documents(data.folder))
    records = [r for r in open_source("ruslit", cfg.data.sources["ruslit"]).records(make_resolver(cfg.data))
               if isinstance(r, Record)]
    assert [row["id"] for row in rows] == [r.id for r in records]
    characters = np.array([int(row["characters"]) for row in rows])
    chunk_of = np.zeros(len(rows), dtype=np.int64)
    for k, (a, b) in enumerate(_chunks(characters, cfg.data.shard_tokens)):
        chunk_of[a:b] = k
    rank = seeded_order(len(rows), cfg.data.split_seed)  # within a chunk, documents go in the seeded order
    for split in ("train", "validation", "test"):
        expected = []
        for doc in sorted((d for d, row in enumerate(rows) if row["split"] == split),
                          key=lambda d: (chunk_of[d], rank[d])):
            text = to_text(records[doc], "ruslit", cfg.data.max_line_chars).text
            expected += tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
        stream = data.shards[split]
        assert np.array_equal(stream[0 : len(stream)], np.array(expected, dtype=np.uint16))
        index = np.load(data.folder / split / "index.npy")
        assert index[:, 3].sum() == len(stream)
        starts = index[:, 1] * cfg.data.shard_tokens + index[:, 2]
        assert np.array_equal(starts[1:], np.cumsum(index[:, 3])[:-1])
    assert workers.pieces("ab\ncd\nef", 1) == ["ab\n", "cd\n", "ef"] and workers.pieces("abcdef", 2) == ["abcdef"]
    test_ids = [doc_id for doc_id, _ in data.documents("test")]
    assert sorted(test_ids) == sorted(row["id"] for row in rows if row["split"] == "test")
    assert len(set(chunk_of.tolist())) > 3  # several chunks, each in its own seeded order
    assert all(tokens[-1] != tokenizer.eos_token_id for _, tokens in data.documents("test"))


def test_sharded_stream_reads_like_one_array(tmp_path: Path) -> None:
    tokens = np.random.default_rng(0).integers(0, 500, 1000).astype(np.uint16)
    paths = []
    for k, (a, b) in enumerate(((0, 300), (300, 301), (301, 1000))):
        paths.append(tmp_path / f"shard-{k}.bin")
        write_shard(paths[-1], tokens[a:b], 500)
    stream = ShardedTokens(paths, 500)
    assert len(stream) == 1000
    for a, b in ((0, 1000), (250, 350), (299, 302), (300, 301), (999, 1000), (500, 400)):
        assert np.array_equal(stream[a:b], tokens[a:b])
    assert np.array_equal(np.concatenate(list(stream.chunks(64))), tokens)
    assert np.array_equal(stream.bincount(500), np.bincount(tokens, minlength=500))
    packed, reference = PackedSequences(stream, 32), PackedSequences(tokens, 32)
    assert len(packed) == len(reference)
    assert all(np.array_equal(packed[i].numpy(), reference[i].numpy()) for i in range(len(packed)))


def test_a_second_run_reuses_the_prepared_set_and_a_change_makes_a_new_one(tmp_path: Path) -> None:
    _, first = _prepare(tmp_path)
    before = _files(first.folder)
    cfg, second = _prepare(tmp_path, run_name="other")
    assert second.folder == first.folder and _files(second.folder) == before
    report = read_json(cfg.layout.result("data.json"))
    assert report["prepared"]["reused"] is True and report["prepared"]["tokens_tokenized"] == 0
    assert run_prepared(cfg).folder == first.folder
    _, changed = _prepare(tmp_path, "data.split_seed=7", run_name="seed7")
    assert changed.folder != first.folder
    shutil.rmtree(first.folder)  # a deleted set is made again, the same, by the run that named it
    _, again = _prepare(tmp_path)
    assert again.folder == first.folder and _files(again.folder) == before


def test_mixture_weights_repeat_or_subsample_train_documents(tmp_path: Path) -> None:
    manifest = micro_manifest(tmp_path / "manifest.tsv")
    _, data = _prepare(tmp_path, f"+data.sources.again={{kind: manifest, manifest: {manifest}, clean: ruslit, "
                       "weight: 0.5}", "data.sources.ruslit.weight=2.0")
    rows = list(read_documents(data.folder))
    train = [r for r in rows if r["split"] == "train"]
    assert {r["copies"] for r in train if r["source"] == "ruslit"} == {"2"}
    halves = [r["copies"] for r in train if r["source"] == "again"]
    assert set(halves) == {"0", "1"}  # a seeded subset of the second copy of the corpus
    used = sum(int(r["tokens"]) * int(r["copies"]) for r in train)
    assert len(data.shards["train"]) == used
    assert all(r["copies"] == "1" for r in rows if r["split"] != "train")


def _prepare_command(tmp: Path, workers: int) -> list[str]:
    tmp.mkdir(exist_ok=True)
    return [sys.executable, "-m", "reproduce.cli", "prepare", *_overrides(tmp), f"data.workers={workers}",
            f"data.sources.ruslit.manifest={micro_manifest(tmp / 'manifest.tsv', n_works=60)}",
            "data.shard_tokens=20000", "tokenizer=rugpt3", "tokenizer.vocab_size=50257"]  # the released vocabulary


def _run_until(command: list[str], folder: Path, condition) -> None:
    """Start ``command``; SIGKILL it (and its workers) once ``condition(folder)`` holds."""
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if condition(folder):
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    process.wait()
    assert process.returncode == -signal.SIGKILL, f"prepare ended before the kill point: {process.stderr.read()!r}"


def _only_whole_files(prepared: Path) -> None:
    """After a kill: no manifest, and every shard under a final name is whole and checked."""
    for folder in prepared.iterdir():
        if folder.is_dir():
            assert not (folder / "manifest.json").exists()
            for shard in folder.glob("*/shard-*.bin"):
                ShardedTokens([shard], verify=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, str]:
    """The files (and their sha256) of a whole prepare of 60 works with the released vocabulary and one worker."""
    reference = tmp_path_factory.mktemp("reference")
    done = subprocess.run(_prepare_command(reference, workers=1), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    expected = _files(next((reference / "prepared").glob("[0-9a-f]*")))
    assert sum(name.startswith("train/shard") for name in expected) > 3
    return expected


@pytest.mark.slow  # two prepares of 60 works with the released vocabulary (and the uninterrupted one, once)
@pytest.mark.parametrize("kill_at", ["scan", "tokenize"])
def test_prepare_killed_and_run_again_is_byte_identical(tmp_path: Path, kill_at: str,
                                                        uninterrupted: dict[str, str]) -> None:
    expected = uninterrupted
    killed = tmp_path / "killed"
    if kill_at == "scan":
        def condition(folder: Path) -> bool:
            return any(folder.glob("prepared/*/.work"))
    else:
        def condition(folder: Path) -> bool:
            return any(folder.glob("prepared/*/.work/chunk-000003.json"))
    _run_until(_prepare_command(killed, workers=2), killed, condition)
    _only_whole_files(killed / "prepared")
    done = subprocess.run(_prepare_command(killed, workers=2), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    folder = next((killed / "prepared").glob("[0-9a-f]*"))
    assert _files(folder) == expected  # and the same with 2 workers as with 1
    assert not (folder / ".work").exists()


def test_damaged_shard_and_mismatched_tokenizer_fail_in_one_line(tmp_path: Path) -> None:
    _, data = _prepare(tmp_path)
    shard = data.folder / "validation" / "shard-00000.bin"
    raw = bytearray(shard.read_bytes())
    raw[HEADER_SIZE + 5] ^= 1
    shard.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="checksum mismatch"):
        load_prepared(data.folder)
    raw[HEADER_SIZE + 5] ^= 1
    shard.write_bytes(bytes(raw))
    other = tmp_path / "other_tokenizer"
    (tmp_path / "small").mkdir()
    _, small = _prepare(tmp_path / "small", "tokenizer.vocab_size=300")
    (data.folder / "tokenizer").rename(other)
    (small.folder / "tokenizer").rename(data.folder / "tokenizer")
    with pytest.raises(UserError, match="made with a 384-token vocabulary, the tokenizer has 300"):
        load_prepared(data.folder)


def test_a_split_whose_shard_is_another_valid_shard_or_lacks_its_index_is_refused(tmp_path: Path) -> None:
    """The test split's shard copied over the train one is whole and self-consistent, yet not what the manifest
    lists: refused, so that a run never trains on its test split; a missing index is one line too."""
    _, data = _prepare(tmp_path)
    train, test = data.folder / "train" / "shard-00000.bin", data.folder / "test" / "shard-00000.bin"
    kept = train.read_bytes()
    train.write_bytes(test.read_bytes())
    with pytest.raises(UserError, match=r"train/shard-00000.bin: not the shard its manifest lists .*copied over it"):
        load_prepared(data.folder)
    train.write_bytes(kept)
    (data.folder / "validation" / "index.npy").unlink()
    with pytest.raises(UserError, match=r"validation/index.npy: missing \(the validation split's document index\)"):
        load_prepared(data.folder)


@pytest.mark.slow  # prepares with and without the drop, and the contamination report
def test_drop_removes_train_documents_that_share_an_ngram_with_an_evaluation_set(tmp_path: Path) -> None:
    from reproduce.commands import data_steps

    cfg, clean_data = _prepare(tmp_path)
    rows = list(read_documents(clean_data.folder))
    victim = next(r for r in rows if r["split"] == "train" and int(r["tokens"]) > 2000)
    record = next(r for r in open_source("ruslit", cfg.data.sources["ruslit"]).records(make_resolver(cfg.data))
                  if r.id == victim["id"])
    paragraph = max(to_text(record, "ruslit", cfg.data.max_line_chars).text.split("\n"), key=len)
    item = (json.dumps({"text": paragraph[:300]}, ensure_ascii=False) + "\n").encode()
    (tmp_path / "cache" / "mine").mkdir(parents=True)
    (tmp_path / "cache" / "mine" / "items.jsonl").write_bytes(item)
    manifest = tmp_path / "mine.tsv"
    manifest.write_text(f"path\tsha256\turl\nmine/items.jsonl\t{hashlib.sha256(item).hexdigest()}\t"
                        "https://example.invalid/items.jsonl\n", encoding="utf-8")
    mine = f"+contamination.sets.mine={{manifest: {manifest}, format: jsonl, fields: [text]}}"
    # only that set: the benchmarks' 90,000 texts would take a minute to encode here, and the test reads only its own
    only_mine = [f"~contamination.sets.{name}" for name in cfg.contamination.sets]
    # 40-token sequences: with the micro vocabulary of 384 ids, 13 tokens are two or three words, found everywhere
    longer = ["contamination.n=40", "contamination.min_tokens=40"]
    cfg, dropped = _prepare(tmp_path, *only_mine, mine, "contamination.drop=true", *longer, run_name="dropped")
    assert list(cfg.contamination.sets) == ["mine"]
    assert dropped.folder != clean_data.folder
    status = {r["id"]: r["status"] for r in read_documents(dropped.folder)}
    assert status[victim["id"]] == "dropped" and dropped.manifest["dropped"]["documents"] >= 1
    kept = sum(int(r["tokens"]) * int(r["copies"]) for r in read_documents(dropped.folder) if r["split"] == "train")
    assert len(dropped.shards["train"]) == kept <= len(clean_data.shards["train"]) - int(victim["tokens"])
    report = data_steps.contamination(cfg, dropped)
    assert report["sets"]["mine"]["contaminated"] == 0 and report["sets"]["mine"]["checked"] == 1
    assert data_steps.contamination(cfg, clean_data)["sets"]["mine"]["contaminated"] == 1
