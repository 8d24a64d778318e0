"""`reproduce eval model=... suite=...` and `reproduce generate` on a tiny model through the console script: the results
file and what it records, the plain `lm_eval` command line on the written task folder giving the same numbers,
perplexity on text files, and bad input (a context too short, a malformed task or data file) as one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import reproduce.evaluate.benchmarks as benchmarks
from reproduce.core.errors import UserError
from reproduce.core.io import read_json
from reproduce.data.tokenizer import train_bbpe
from reproduce.evaluate.harness import model_arguments, run_lm_eval
from reproduce.evaluate.lm_eval_tasks import write_tasks
from reproduce.evaluate.suites import resolve_benchmark
from tests.helpers import run, save_tiny_model

pytestmark = pytest.mark.slow  # a dozen console-script starts, each through lm-eval

BIN = Path(sys.executable).parent
LOCAL_TASKS = ["rublimp", "xwinograd_ru_local", "parus_crowd_majority", "rucola_indomain_dev"]
TEXT = "Однажды вечером мы гуляли по набережной. Было тихо, и река блестела под фонарями.\n" * 3


def cli(*args: str, cwd: Path, code: int = 0, program: str = "reproduce") -> subprocess.CompletedProcess:
    """A console script of this environment (reproduce, lm_eval) in ``cwd``, offline; asserts its exit code."""
    return run([str(BIN / program), *args], cwd=cwd, code=code, timeout=600)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, mirror: Path) -> Path:
    """`reproduce eval` of a tiny model, in a folder that is no git checkout; texts of every kind prepare decodes."""
    tmp = tmp_path_factory.mktemp("eval")
    save_tiny_model(tmp / "tiny", mirror, n_positions=256)
    (tmp / "text.txt").write_text(TEXT, encoding="utf-8")
    (tmp / "cp1251.txt").write_bytes(TEXT.encode("cp1251"))
    (tmp / "empty.txt").write_text("\n", encoding="utf-8")
    out = cli("eval", "model=tiny", "eval.limit=3", "eval.batch_size=4",
              "eval.perplexity.texts=[text.txt,cp1251.txt,empty.txt]", "eval.perplexity.stride=16", cwd=tmp)
    assert out.stderr == ""  # nothing on the terminal but our lines: no "fatal: not a git repository" from lm-eval
    return tmp


def test_results_file_holds_every_task_and_what_changes_a_score(evaluated: Path) -> None:
    result = read_json(evaluated / "results" / "eval" / "tiny" / "ru_local.json")
    meta, metrics = result["meta"], result["metrics"]
    assert meta["suite"] == "ru_local" and meta["tasks"] == LOCAL_TASKS
    assert meta["model_args"]["prefix_token_id"] == 2 and meta["prefix_token"] == "eos"  # </s> of the BBPE tokenizer
    assert (meta["device"], meta["dtype"], meta["batch_size"], meta["limit"]) == ("cpu", "float32", 4, 3)
    for key in ("package_version", "torch", "transformers", "lm_eval", "git_commit", "seed"):
        assert meta[key] is not None, key
    assert "rublimp/_template_yaml" in meta["task_files"] and "mirror:eval/parus/assign_PARus.tsv" in meta["task_files"]
    assert metrics["rublimp"]["n"] == 45 * 3 and set(metrics["rublimp"]) == {"acc", "tie", "n"}
    assert {task: metrics[task]["n"] for task in LOCAL_TASKS[1:]} == {task: 3 for task in LOCAL_TASKS[1:]}
    assert set(metrics["rucola_indomain_dev"]) == {"acc", "mcc", "n"}
    assert all(0 <= metrics[task]["acc"] <= 1 for task in LOCAL_TASKS)
    phenomenon = result["lm_eval"]["results"]["rublimp_verb_acc_object"]
    assert phenomenon["acc,none"] == metrics["rublimp_verb_acc_object"]["acc"]


def test_perplexity_of_text_files(evaluated: Path) -> None:
    """Texts are decoded as prepare decodes documents: the cp1251 one is the same text again, the empty one is
    skipped and recorded."""
    row = read_json(evaluated / "results" / "eval" / "tiny" / "perplexity.json")
    assert row["bytes"] == 2 * len(TEXT.encode("utf-8")) and row["stride"] == 16 and row["context"] == 256
    assert row["perplexity"] > 1 and row["meta"]["texts"] == ["text.txt", "cp1251.txt", "empty.txt"]
    assert row["n_texts"] == 2 and row["meta"]["skipped"] == [{"file": "empty.txt", "reason": "empty"}]


def test_any_causal_lm_transformers_loads_is_scored_at_its_own_context(tmp_path: Path, mirror: Path) -> None:
    """A Llama (context from max_position_embeddings, no n_positions) goes through the same command."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_bbpe(["Кошка спит. Мы идём домой."] * 50, vocab_size=300, min_frequency=2)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=320,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "llama")
    tokenizer.save_pretrained(tmp_path / "llama")
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf-8")
    cli("eval", "model=llama", "eval.tasks=[rublimp]", "eval.limit=1", "eval.perplexity.texts=[text.txt]",
        cwd=tmp_path)
    row = read_json(tmp_path / "results" / "eval" / "llama" / "perplexity.json")
    assert (row["context"], row["stride"]) == (320, 160) and row["perplexity"] > 1
    assert read_json(tmp_path / "results" / "eval" / "llama" / "ru_local.json")["metrics"]["rublimp"]["n"] == 45


def test_the_plain_lm_eval_command_gives_the_same_numbers(evaluated: Path) -> None:
    meta = read_json(evaluated / "results" / "eval" / "tiny" / "ru_local.json")["meta"]
    include = evaluated / "runs" / "eval" / "lm_eval_tasks" / "ru_local"
    cli("--model", "hf", "--model_args", meta["lm_eval_model_args"], "--include_path", str(include),
        "--tasks", ",".join(LOCAL_TASKS), "--limit", "3", "--batch_size", "4", "--output_path", "plain",
        cwd=evaluated, program="lm_eval")
    plain = read_json(next((evaluated / "plain").rglob("results_*.json")))
    ours = read_json(evaluated / "results" / "eval" / "tiny" / "ru_local.json")["lm_eval"]
    for section in ("results", "groups"):
        for task, entry in ours[section].items():
            for metric in ("acc,none", "tie,none", "mcc,none"):
                if metric in entry:
                    assert plain[section][task][metric] == pytest.approx(entry[metric], abs=1e-9), (task, metric)


def test_generate_prints_seeded_samples(evaluated: Path) -> None:
    args = ("generate", "model=tiny", "prompt=Однажды, вечером", "eval.generate.num_samples=2",
            "eval.generate.max_new_tokens=6")
    first, again = cli(*args, cwd=evaluated).stdout, cli(*args, cwd=evaluated).stdout
    lines = [line for line in first.splitlines() if line.startswith("[tiny #")]
    assert len(lines) == 2 and all("] Однажды, вечером" in line for line in lines)
    assert first == again  # the seed fixes the samples


def test_a_model_shorter_than_the_task_fails_in_one_line_without_results(tmp_path: Path, mirror: Path) -> None:
    save_tiny_model(tmp_path / "short", mirror, n_positions=4)
    out = cli("eval", "model=short", "eval.tasks=[rucola_indomain_dev]", "eval.limit=2", cwd=tmp_path, code=2)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "the model's context is 4" in lines[0], out.stderr[-2000:]
    assert not (tmp_path / "results").exists()


def test_malformed_task_file_and_data_file_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          mirror: Path) -> None:
    tasks = tmp_path / "tasks"
    (tasks / "broken").mkdir(parents=True)
    (tasks / "broken" / "broken.yaml").write_text("task: broken\ndataset_kwargs: {data_files: [\n", encoding="utf-8")
    monkeypatch.setattr(benchmarks, "TASKS_DIR", tasks)
    with pytest.raises(UserError, match=r"broken\.yaml: not valid YAML"):
        resolve_benchmark("broken", lambda entry: Path(entry.path))
    monkeypatch.undo()
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("id,sentence\n0,Кошка спит.\n", encoding="utf-8")  # not RuBLiMP's columns
    include = write_tasks([resolve_benchmark("rublimp", lambda entry: bad_csv)], tmp_path / "written")
    model = save_tiny_model(tmp_path / "tiny", mirror, n_positions=64)
    with pytest.raises(UserError, match="could not read the documents of rublimp_verb_acc_object"):
        run_lm_eval(model_arguments(model, 2, "float32", "cpu", "eos"), include, ["rublimp_verb_acc_object"])


def test_perplexity_alone_with_no_tasks(evaluated: Path) -> None:
    """eval.tasks=[]: the perplexity of the texts, no suite run, no suite results file."""
    tmp = evaluated
    out = cli("eval", "model=tiny", "eval.tasks=[]", "eval.name=tiny_ppl_only", "eval.perplexity.texts=[text.txt]",
              "eval.perplexity.stride=16", cwd=tmp)
    folder = tmp / "results" / "eval" / "tiny_ppl_only"
    assert "perplexity" in out.stdout and "[eval] tiny_ppl_only rublimp" not in out.stdout
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".json") == ["perplexity.json", "source.json"]
    assert read_json(folder / "perplexity.json")["perplexity"] > 0
    nothing = cli("eval", "model=tiny", "eval.tasks=[]", cwd=tmp, code=2)
    assert nothing.stderr.startswith("error: eval.tasks=[] and no eval.perplexity.texts: nothing to score")
