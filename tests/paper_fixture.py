"""A copy of the committed results/ for the paper's tests, and models added as `reproduce eval` writes them."""

from __future__ import annotations

import shutil
from pathlib import Path

from reproduce.core.io import write_json

RESULTS = Path(__file__).resolve().parents[1] / "results"
META = {"package_version": "0.1.0", "torch": "2.0", "transformers": "4.0", "lm_eval": "0.4", "git_commit": "abc123",
        "device": "cpu", "dtype": "float32", "batch_size": 8, "seed": 1234}


def copy_results(tmp_path: Path) -> Path:
    """``tmp_path/results``: the committed results/, which the committed paper/ was built from."""
    root = tmp_path / "results"
    shutil.copytree(RESULTS, root)
    return root


def add_evaluated(root: Path, name: str, parameters: int, perplexity: float, acc: float) -> None:
    """results/eval/<name>/: what `reproduce eval model=...` writes for a checkpoint (suite ru_local, perplexity)."""
    metrics = {"rublimp": {"acc": acc, "tie": 0.0, "n": 45000}, "rublimp_add_new_suffix": {"acc": acc, "n": 1000},
               "xwinograd_ru_local": {"acc": acc - 0.1, "n": 315},
               "parus_crowd_majority": {"acc": acc - 0.05, "n": 500},
               "rucola_indomain_dev": {"acc": 0.7, "mcc": acc - 0.5, "n": 983}}
    write_json(root / "eval" / name / "ru_local.json",
               {"meta": {**META, "model": name, "suite": "ru_local"}, "metrics": metrics,
                "lm_eval": {"config": {"model_num_parameters": parameters}}})
    write_json(root / "eval" / name / "perplexity.json",
               {"meta": {**META, "model": name, "texts": ["texts/*.txt"]}, "tokens": 50000, "bytes": 200000,
                "nll_per_token": 3.0, "perplexity": perplexity, "bits_per_byte": 0.9, "context": 2048, "stride": 1024,
                "n_texts": 3, "parameters": parameters})


def add_released(root: Path, size: str, shots: int, acc: float) -> None:
    """results/eval/ai-forever--rugpt3<size>_based_on_gpt2/: what `reproduce eval` writes for a released checkpoint on
    suite tape at k = ``shots`` (tape.json, or tape_<k>shot.json), and at k = 0 on suite rucola_penlp."""
    folder = root / "eval" / f"ai-forever--rugpt3{size}_based_on_gpt2"
    tape = {f"tape_{task}": {"acc": acc, "f1": acc - 0.1, "n": 500} for task in ("winograd", "ruworldtree",
                                                                                  "ruopenbookqa")}
    tape |= {f"tape_{task}": {"em": acc / 100, "f1": acc / 50, "n": 500} for task in ("multiq", "chegeka")}
    tape |= {f"tape_{task}_ep{i}": dict(tape[f"tape_{task}"]) for task in ("winograd", "multiq") for i in range(1, 6)}
    name = f"tape_{shots}shot.json" if shots else "tape.json"
    write_json(folder / name, {"meta": {**META, "model": folder.name, "suite": "tape", "num_fewshot": shots or None},
                               "metrics": tape, "lm_eval": {}})
    if shots:
        return
    penlp = {"mcc": acc - 0.4, "acc": acc, "mcc_out_of_domain": acc - 0.45, "acc_out_of_domain": acc - 0.05,
             "threshold": -20.5, "n": 2787}
    write_json(folder / "rucola_penlp.json", {"meta": {**META, "model": folder.name, "suite": "rucola_penlp",
                                                       "num_fewshot": None},
                                              "metrics": {"rucola_penlp": penlp}, "penlp": {"alpha": 0.8}})
