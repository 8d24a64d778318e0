"""The TAPE task folder, offline: indexing (five episode tasks and a group per dataset), the pinned Hub files, prompts
rendered by lm-eval's own task objects on handwritten documents with the dataset's fields, TAPE's fixed episodes as
the demonstrations of each k, scoring; the suite's k; and the runner's handling of repeated and over-long requests.
Nothing here downloads: the documents reach lm-eval through `custom_dataset`."""

from __future__ import annotations

import re
from types import SimpleNamespace

import datasets
import pytest
import torch
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks import TaskManager
from lm_eval.tasks._yaml_loader import load_yaml
from transformers import GPT2LMHeadModel

from reproduce.core.errors import UserError
from reproduce.data.tokenizer import train_bbpe
from reproduce.evaluate.benchmarks import TASKS_DIR, benchmark
from reproduce.evaluate.harness import PackageHFLM, score_once
from reproduce.evaluate.suites import load_suite
from reproduce.model.gpt2 import gpt2_config
from tests.helpers import tiny_model_config

FOLDER = TASKS_DIR / "tape"
DATASETS = {"winograd": "winograd", "ruworldtree": "ru_worldtree", "ruopenbookqa": "ru_openbook", "multiq": "multiq",
            "chegeka": "chegeka"}  # task name -> the Hub files' folder and the original items' `perturbation`
METRICS = {"winograd": ["acc", "f1"], "ruworldtree": ["acc", "f1"], "ruopenbookqa": ["acc", "f1"],
           "multiq": ["em", "f1"], "chegeka": ["em", "f1"]}
# Episode ids of the handwritten train items: 0-4 hold one item each (k = 1), 5-9 four (k = 4). Items are listed with
# every episode they belong to, as TAPE's train file does; item i carries the number i in its text.
EPISODES = [[0, 5], [5], [5], [5], [1, 6], [6], [6], [6], [2, 7], [7], [7], [7], [3, 8], [8], [8], [8], [4, 9], [9],
            [9], [9]]


def _winograd(i: int, label: int, perturbation: str = "winograd", episode: list | None = None) -> dict:
    return {"text": f"Мама {i} попросила дочь, которая пришла.", "answer": "дочь", "label": label,
            "options": ["Мама", "дочь"], "reference": "которая", "homonymia_type": 1.1, "episode": episode or [],
            "perturbation": perturbation}


def _question(i: int, answer: str, perturbation: str, episode: list | None = None) -> dict:
    return {"question": f"Что {i} нужно растению? (A) свет (B) камень (C) песок (D) стекло", "answer": answer,
            "exam_name": "MCAS", "school_grade": 5, "knowledge_type": "MODEL", "episode": episode or [],
            "perturbation": perturbation, "ID": f"7-{i}"}


def _multiq(i: int, answers: list[str], perturbation: str = "multiq", episode: list | None = None) -> dict:
    return {"support_text": f"Пётр {i} родился в Казани.", "main_text": "Казань — город на Волге.",
            "question": "На какой реке город, где родился Пётр?", "bridge_answers": [{"label": "passage", "offset": 0,
            "length": 6, "segment": "Казань"}], "main_answers": [{"label": "passage", "offset": 17, "length": 5,
            "segment": a} for a in answers], "episode": episode or [], "perturbation": perturbation}


def _chegeka(i: int, answer: str, perturbation: str = "chegeka", episode: list | None = None) -> dict:
    return {"question_id": i, "question": f"Каждую ночь {i} я открываю ЕГО.", "answer": answer, "topic": "Песни-25",
            "author": "Автор", "tour_name": "Тур", "tour_link": "", "episode": episode or [],
            "perturbation": perturbation}


def _make(name: str, i: int, gold: object, perturbation: str | None = None, episode: list | None = None) -> dict:
    own = DATASETS[name]
    if name == "winograd":
        return _winograd(i, gold, perturbation or own, episode)
    if name in ("ruworldtree", "ruopenbookqa"):
        return _question(i, gold, perturbation or own, episode)
    if name == "multiq":
        return _multiq(i, gold, perturbation or own, episode)
    return _chegeka(i, gold, perturbation or own, episode)


GOLDS = {"winograd": [1, 0], "ruworldtree": ["A", "C"], "ruopenbookqa": ["A", "C"],
         "multiq": [["Волге", "Волга"], ["Волге"]], "chegeka": ["Окна", "Окно"]}
# Per dataset: the test prompt of item 7 and the continuations scored (multiple choice) or the target (generation).
PROMPTS = {
    "winograd": ("Мама 7 попросила дочь, которая пришла.\nВопрос: В этом тексте «которая» относится к «дочь»?\nОтвет:",
                 ["нет", "да"]),
    "ruworldtree": ("Вопрос: Что 7 нужно растению?\nОтвет:", ["свет", "камень", "песок", "стекло"]),
    "ruopenbookqa": ("Что 7 нужно растению?", ["свет", "камень", "песок", "стекло"]),
    "multiq": ("Пётр 7 родился в Казани.\nКазань — город на Волге.\nВопрос: На какой реке город, где родился Пётр?"
               "\nОтвет:", "Волге"),
    "chegeka": ('Категория "Песни-25"\nВопрос: Каждую ночь 7 я открываю ЕГО.\nОтвет:', "Окна"),
}


@pytest.fixture(scope="module")
def manager() -> TaskManager:
    return TaskManager(include_path=str(FOLDER), include_defaults=False)


def _task(manager: TaskManager, name: str, episode: int = 1, test: list[dict] | None = None) -> ConfigurableTask:
    """lm-eval's task object for tape_<name>_ep<episode>, its Hub download replaced by handwritten documents."""
    golds = GOLDS[name]
    train = [_make(name, i, golds[i % 2], episode=eps) for i, eps in enumerate(EPISODES)]
    test = test or [_make(name, 7, golds[0]), _make(name, 8, golds[1]), _make(name, 9, golds[0], "butter_fingers")]
    cfg = load_yaml(manager.task_index[f"tape_{name}_ep{episode}"].yaml_path)
    cfg["custom_dataset"] = lambda **_: datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(train), "test": datasets.Dataset.from_list(test)})
    return ConfigurableTask(config=cfg)


def test_folder_indexes_five_episode_tasks_and_a_group_per_dataset(manager: TaskManager) -> None:
    assert sorted(manager.all_subtasks) == sorted(f"tape_{n}_ep{i}" for n in DATASETS for i in range(1, 6))
    assert sorted(manager.all_groups) == sorted(f"tape_{n}" for n in DATASETS)
    for name, metrics in METRICS.items():
        group = load_yaml(manager.task_index[f"tape_{name}"].yaml_path)
        assert group["task"] == [f"tape_{name}_ep{i}" for i in range(1, 6)]
        assert group["aggregate_metric_list"] == [{"metric": m, "aggregation": "mean", "weight_by_size": False}
                                                  for m in metrics]
    assert benchmark("tape").data_names() == []  # Hub data: nothing for write_tasks to resolve


@pytest.mark.parametrize("name", list(DATASETS))
def test_task_configs_read_the_pinned_episode_files(manager: TaskManager, name: str) -> None:
    readme = (FOLDER / "README.md").read_text(encoding="utf-8")
    for i in range(1, 6):
        cfg = load_yaml(manager.task_index[f"tape_{name}_ep{i}"].yaml_path)
        files = cfg["dataset_kwargs"]["data_files"]
        revision = re.fullmatch(rf"hf://datasets/RussianNLP/tape@([0-9a-f]{{40}})/dummy/episodes/{DATASETS[name]}"
                                r"/train\.jsonl", files["train"]).group(1)
        assert files["test"] == files["train"].replace("train.jsonl", "test.jsonl")
        assert revision in readme
        assert (cfg["dataset_path"], cfg["test_split"], cfg["num_fewshot"]) == ("json", "test", 0)
        assert cfg["fewshot_config"]["split"] == "train"
        assert cfg["fewshot_config"]["sampler"].__name__ == f"Episode{i}"
        assert [m["metric"] for m in cfg["metric_list"]] == METRICS[name]


@pytest.mark.parametrize("name", list(DATASETS))
def test_prompts_render_on_the_original_test_items(manager: TaskManager, name: str) -> None:
    task = _task(manager, name)
    docs = list(task.eval_docs)
    assert len(docs) == 2  # the perturbed item is left out
    text, scored = PROMPTS[name]
    assert task.doc_to_text(docs[0]) == text
    assert task.fewshot_context(docs[0], num_fewshot=0) == text
    requests = task.construct_requests(docs[0], text)
    if isinstance(scored, list):
        assert [r.args for r in requests] == [(text, " " + choice) for choice in scored]
    else:
        assert task.doc_to_target(docs[0]) == scored and requests.args[0] == text


@pytest.mark.parametrize("name", list(DATASETS))
def test_demonstrations_are_the_items_of_tapes_episode(manager: TaskManager, name: str) -> None:
    for episode in range(1, 6):
        task = _task(manager, name, episode)
        doc = list(task.eval_docs)[0]
        one = task.fewshot_context(doc, num_fewshot=1)
        assert one.endswith(PROMPTS[name][0]) and one.count("\n\n") == 1
        assert f" {4 * (episode - 1)} " in one.split("\n\n")[0]  # episode e-1 of size 1 holds item 4(e-1)
        four = task.fewshot_context(doc, num_fewshot=4).split("\n\n")
        items = [i for i, eps in enumerate(EPISODES) if 4 + episode in eps]
        assert len(four) == 5 and [f" {i} " in shot for i, shot in zip(items, four[:4], strict=True)] == [True] * 4
    with pytest.raises(ValueError, match="holds 0 episodes of 8 demonstrations, not 5"):
        task.fewshot_context(doc, num_fewshot=8)


def test_a_demonstration_shows_its_answer(manager: TaskManager) -> None:
    shots = {name: _task(manager, name).fewshot_context(list(_task(manager, name).eval_docs)[0], num_fewshot=1)
             for name in DATASETS}
    assert shots["winograd"].split("\n\n")[0].endswith("Ответ: да")  # item 0: label 1
    assert shots["ruworldtree"].split("\n\n")[0].endswith("Ответ: свет")  # item 0: A
    assert shots["ruopenbookqa"].split("\n\n")[0].endswith("? свет")
    assert shots["multiq"].split("\n\n")[0].endswith("Ответ: Волге")
    assert shots["chegeka"].split("\n\n")[0].endswith("Ответ: Окна")


@pytest.mark.parametrize("name", ["winograd", "ruworldtree", "ruopenbookqa"])
def test_multiple_choice_scoring_follows_the_gold(manager: TaskManager, name: str) -> None:
    task = _task(manager, name)
    for doc in task.eval_docs:
        n = len(task.doc_to_choice(doc))
        for picked in range(n):
            lls = [(-1.0 if i == picked else -5.0, False) for i in range(n)]
            result = task.process_results(doc, lls)
            assert result["acc"] == float(picked == task.doc_to_target(doc))
            assert tuple(result["f1"]) == (task.doc_to_target(doc), picked)


def test_f1_aggregations(manager: TaskManager) -> None:
    binary = _task(manager, "winograd").aggregation()["f1"]
    assert binary([(1, 1), (0, 1), (1, 0), (0, 0)]) == pytest.approx(0.5)  # F1 of label 1: precision = recall = 1/2
    macro = _task(manager, "ruworldtree").aggregation()["f1"]
    assert macro([(0, 0), (1, 1), (2, 0), (3, 3)]) == pytest.approx((2 / 3 + 1 + 0 + 1) / 4)


def test_generated_answers_score_exact_match_and_token_f1(manager: TaskManager) -> None:
    multiq, chegeka = _task(manager, "multiq"), _task(manager, "chegeka")
    doc = list(multiq.eval_docs)[0]  # golds "Волге", "Волга"
    assert multiq.process_results(doc, [" на Волге"]) == {"em": 0.0, "f1": pytest.approx(2 / 3)}
    assert multiq.process_results(doc, ["Волга!"]) == {"em": 1.0, "f1": 1.0}
    doc = list(chegeka.eval_docs)[0]  # gold "Окна"
    assert chegeka.process_results(doc, [" окна"]) == {"em": 1.0, "f1": 1.0}
    assert chegeka.process_results(doc, ["Дверь"]) == {"em": 0.0, "f1": 0.0}
    assert multiq.config.generation_kwargs["until"] == ["\n", "."]


def test_test_items_without_gold_labels_stop_with_one_line(manager: TaskManager) -> None:
    with pytest.raises(ValueError, match="items without a gold 'label'"):
        list(_task(manager, "winograd", test=[_winograd(7, -1)]).eval_docs)
    with pytest.raises(ValueError, match="items without a gold 'answer'"):
        list(_task(manager, "chegeka", test=[_chegeka(7, "")]).eval_docs)


def test_the_suite_takes_tapes_k_only() -> None:
    suite = load_suite("tape", num_fewshot=4)
    assert suite.shots == (0, 1, 4, 8) and suite.network and suite.benchmarks == ["tape"]
    assert suite.tasks == [f"tape_{name}" for name in DATASETS]
    with pytest.raises(UserError, match="eval.num_fewshot=3: suite tape defines k = 0, 1, 4, 8"):
        load_suite("tape", num_fewshot=3)
    with pytest.raises(UserError, match="tape_ethics not in suite tape"):
        load_suite("tape", ["tape_ethics"])


def test_each_distinct_request_is_scored_once() -> None:
    calls = []

    def method(requests: list) -> list:
        calls.append([r.args for r in requests])
        return [f"answer to {r.args[0]}" for r in requests]

    requests = [SimpleNamespace(args=(c, "x")) for c in ("a", "b", "a", "c", "b")]
    assert score_once(method, requests, key=tuple) == [f"answer to {c}" for c in "abacb"]
    assert calls == [[("a", "x"), ("b", "x"), ("c", "x")]]


def test_a_generation_longer_than_the_context_is_refused(tmp_path) -> None:
    tokenizer = train_bbpe(["Каждую ночь я открываю окно."] * 20, vocab_size=300, min_frequency=1)
    torch.manual_seed(0)
    GPT2LMHeadModel(gpt2_config(tiny_model_config(len(tokenizer), n_positions=32), 1, 2)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model = PackageHFLM(pretrained=str(tmp_path), backend="causal", dtype="float32", device="cpu", batch_size=1)
    short, long = "Ответ:", "Каждую ночь я открываю окно. " * 6 + "Ответ:"
    settings = {"until": ["\n"], "do_sample": False, "max_gen_toks": 8}
    assert len(model.generate_until([SimpleNamespace(args=(short, settings))] * 2)) == 2
    with pytest.raises(UserError, match="the model's context is 32"):
        model.generate_until([SimpleNamespace(args=(long, settings))])


@pytest.mark.slow  # the suite through lm-eval
def test_the_suite_runs_through_lm_eval_on_local_files(tmp_path) -> None:
    """The folder with its Hub paths pointed at local JSONL files of handwritten items, scored by lm-eval with a tiny
    model at k = 0 and 1: every group's metrics, the five zero-shot episodes equal."""
    import json
    import shutil

    from reproduce.evaluate.harness import model_arguments, run_lm_eval, task_metrics

    folder = tmp_path / "tape"
    shutil.copytree(FOLDER, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name, hub_name in DATASETS.items():
        data = tmp_path / "data" / hub_name
        data.mkdir(parents=True)
        golds = GOLDS[name]
        splits = {"train": [_make(name, i, golds[i % 2], episode=eps) for i, eps in enumerate(EPISODES)],
                  "test": [_make(name, 7, golds[0]), _make(name, 8, golds[1])]}
        for split, docs in splits.items():
            (data / f"{split}.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs),
                                                 encoding="utf-8")
        template = folder / f"_{name}_yaml"
        text = template.read_text(encoding="utf-8")
        template.write_text(re.sub(rf"hf://datasets/RussianNLP/tape@[0-9a-f]{{40}}/dummy/episodes/{hub_name}",
                                   data.as_posix(), text), encoding="utf-8")
    lines = [_make(n, i, GOLDS[n][0])[field] for n, field in (("winograd", "text"), ("multiq", "support_text"),
                                                              ("chegeka", "question")) for i in range(10)]
    tokenizer = train_bbpe(lines * 3 + ["Вопрос: Ответ: нет да Волге Окна"] * 10, vocab_size=400, min_frequency=1)
    torch.manual_seed(1)
    model_dir = tmp_path / "model"
    GPT2LMHeadModel(gpt2_config(tiny_model_config(len(tokenizer), n_positions=512), 1, 2)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    args = model_arguments(model_dir, batch_size=4, dtype="float32", device="cpu", prefix_token="eos")
    tasks = [f"tape_{name}" for name in DATASETS]
    for k in (0, 1):
        metrics = task_metrics(run_lm_eval(args, folder, tasks, num_fewshot=k))
        for name in DATASETS:
            episodes = [metrics[f"tape_{name}_ep{i}"] for i in range(1, 6)]
            assert {m: metrics[f"tape_{name}"][m] for m in METRICS[name]} == pytest.approx(
                {m: sum(e[m] for e in episodes) / 5 for m in METRICS[name]}), (name, k)
            assert all(e["n"] == 2 for e in episodes)
            if k == 0:
                assert all(e == episodes[0] for e in episodes), name
