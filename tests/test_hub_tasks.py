"""The Hub-data lm-eval tasks, offline: the Russian SuperGLUE task folder (indexing, task configs, prompts rendered by
lm-eval's own task object on handwritten documents with the dataset's field names, scoring) and the names of the
`ru_hub` suite's built-in lm-eval tasks. Nothing here downloads: the documents reach lm-eval through `custom_dataset`.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import datasets
import pytest
import yaml
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks import TaskManager
from lm_eval.tasks._yaml_loader import load_yaml

from reproduce.evaluate.benchmarks import TASKS_DIR, benchmark

FOLDER = TASKS_DIR / "russian_superglue"
HUB_DATASET = "RussianNLP/russian_super_glue"
GROUP = "russian_superglue"
RU_HUB = [  # lm-eval 0.4.13 names; global_mmlu_full_ru is a group, the others are tasks
    "xnli_ru", "xwinograd_ru", "xstorycloze_ru", "belebele_rus_Cyrl", "arc_ru", "hellaswag_ru", "m_mmlu_ru",
    "truthfulqa_ru_mc1", "truthfulqa_ru_mc2", "global_mmlu_full_ru",
]  # fmt: skip

MUSERC_PARAGRAPH = "(1) Пётр приехал в Москву в 1990 году. (2) Там он поступил в университет."
# Per task: two documents with the Hub dataset's fields (the loading script's features), the prompt lm-eval must
# render for each, and the choices in label order. Labels vary so that doc_to_target is checked, not assumed.
CASES = {
    "parus": (
        [
            {
                "premise": "Моё тело отбрасывало тень на траву.",
                "choice1": "Солнце вставало.",
                "choice2": "Трава была скошена.",
                "question": "cause",
                "idx": 0,
                "label": 0,
            },
            {
                "premise": "Женщина потеряла равновесие.",
                "choice1": "Она запела.",
                "choice2": "Она упала.",
                "question": "effect",
                "idx": 1,
                "label": 1,
            },
        ],
        ["Моё тело отбрасывало тень на траву потому что", "Женщина потеряла равновесие поэтому"],
        [["солнце вставало.", "трава была скошена."], ["она запела.", "она упала."]],
    ),
    "rcb": (
        [
            {
                "premise": "Мама сказала, что вечером придёт в гости.",
                "hypothesis": "Мама придёт в гости",
                "verb": "сказать",
                "negation": "no_negation",
                "idx": 0,
                "label": 0,
            },
            {
                "premise": "Неизвестно, знал ли Пётр, что поезд опаздывает.",
                "hypothesis": "Пётр знал, что поезд опаздывает.",
                "verb": "знать",
                "negation": "negation",
                "idx": 1,
                "label": 2,
            },
        ],
        [
            "Мама сказала, что вечером придёт в гости.\nВопрос: Мама придёт в гости. Верно, неверно или неизвестно?"
            "\nОтвет:",
            "Неизвестно, знал ли Пётр, что поезд опаздывает.\nВопрос: Пётр знал, что поезд опаздывает. Верно, неверно"
            " или неизвестно?\nОтвет:",
        ],
        [["Верно", "Неверно", "Неизвестно"]] * 2,
    ),
    "terra": (
        [
            {"premise": "Кошка спит на тёплом подоконнике.", "hypothesis": "Кошка спит.", "idx": 0, "label": 0},
            {
                "premise": "В Москве открылась новая станция метро.",
                "hypothesis": "В Москве закрыли метро",
                "idx": 1,
                "label": 1,
            },
        ],
        [
            "Кошка спит на тёплом подоконнике.\nВопрос: Кошка спит. Верно или неверно?\nОтвет:",
            "В Москве открылась новая станция метро.\nВопрос: В Москве закрыли метро. Верно или неверно?\nОтвет:",
        ],
        [["Верно", "Неверно"]] * 2,
    ),
    "danetqa": (
        [
            {
                "question": "Есть ли вода на Марсе?",
                "passage": "Вода на Марсе существует в виде льда.",
                "idx": 0,
                "label": 1,
            },
            {
                "question": "правда ли что киты это рыбы",
                "passage": "Киты — морские млекопитающие.",
                "idx": 1,
                "label": 0,
            },
        ],
        [
            "Вода на Марсе существует в виде льда.\nВопрос: Есть ли вода на Марсе?\nОтвет:",
            "Киты — морские млекопитающие.\nВопрос: правда ли что киты это рыбы?\nОтвет:",
        ],
        [["нет", "да"]] * 2,
    ),
    "rwsd": (
        [
            {
                "text": "Женя поблагодарила Сашу за помощь, которую она оказала.",
                "span1_index": 2,
                "span2_index": 6,
                "span1_text": "Сашу",
                "span2_text": "она оказала",
                "idx": 0,
                "label": 1,
            },
            {
                "text": "Женя поблагодарила Сашу за помощь, которую она оказала.",
                "span1_index": 0,
                "span2_index": 6,
                "span1_text": "Женя",
                "span2_text": "она оказала",
                "idx": 1,
                "label": 0,
            },
        ],
        [
            "Текст: Женя поблагодарила Сашу за помощь, которую она оказала.\n"
            "Вопрос: В тексте выше «она оказала» относится к «Сашу»?\nОтвет:",
            "Текст: Женя поблагодарила Сашу за помощь, которую она оказала.\n"
            "Вопрос: В тексте выше «она оказала» относится к «Женя»?\nОтвет:",
        ],
        [["нет", "да"]] * 2,
    ),
    "russe": (
        [
            {
                "word": "дух",
                "sentence1": "Гость был в хорошем духе.",
                "sentence2": "Он весь вечер был не в духе.",
                "start1": 20,
                "start2": 23,
                "end1": 24,
                "end2": 27,
                "gold_sense1": 1,
                "gold_sense2": 1,
                "idx": 0,
                "label": 1,
            },
            {
                "word": "замок",
                "sentence1": "Старинный замок стоит на холме.",
                "sentence2": "Замок на двери сломался.",
                "start1": 10,
                "start2": 0,
                "end1": 15,
                "end2": 5,
                "gold_sense1": 1,
                "gold_sense2": 2,
                "idx": 1,
                "label": 0,
            },
        ],
        [
            "Предложение 1: Гость был в хорошем духе.\nПредложение 2: Он весь вечер был не в духе.\n"
            "Вопрос: Слово «дух» употреблено в одном и том же значении в двух предложениях выше?\nОтвет:",
            "Предложение 1: Старинный замок стоит на холме.\nПредложение 2: Замок на двери сломался.\n"
            "Вопрос: Слово «замок» употреблено в одном и том же значении в двух предложениях выше?\nОтвет:",
        ],
        [["нет", "да"]] * 2,
    ),
    "muserc": (
        [
            {
                "paragraph": MUSERC_PARAGRAPH,
                "question": "Куда поступил Пётр?",
                "answer": "В университет.",
                "idx": {"paragraph": 0, "question": 0, "answer": 0},
                "label": 1,
            },
            {
                "paragraph": MUSERC_PARAGRAPH,
                "question": "Куда поступил Пётр?",
                "answer": "В школу.",
                "idx": {"paragraph": 0, "question": 0, "answer": 1},
                "label": 0,
            },
        ],
        [f"{MUSERC_PARAGRAPH}\nВопрос: Куда поступил Пётр?\nОтвет:"] * 2,
        [
            ["В университет.\nОтвет верный? нет", "В университет.\nОтвет верный? да"],
            ["В школу.\nОтвет верный? нет", "В школу.\nОтвет верный? да"],
        ],
    ),
}


@pytest.fixture(scope="module")
def manager() -> TaskManager:
    return TaskManager(include_path=str(FOLDER), include_defaults=False)


def _config(manager: TaskManager, name: str) -> dict:
    return load_yaml(manager.task_index[name].yaml_path)  # !function resolved, include merged


def _task(manager: TaskManager, config: str) -> ConfigurableTask:
    """lm-eval's task object for rsg_<config>, its Hub download replaced by the handwritten documents."""
    docs = CASES[config][0]
    cfg = _config(manager, f"rsg_{config}")
    cfg["custom_dataset"] = lambda **_: datasets.DatasetDict(
        {split: datasets.Dataset.from_list(docs) for split in ("train", "validation")}
    )
    return ConfigurableTask(config=cfg)


def test_folder_indexes_the_seven_tasks_and_the_group(manager: TaskManager) -> None:
    tasks = [f"rsg_{c}" for c in CASES]
    assert sorted(manager.all_subtasks) == sorted(tasks)
    assert manager.all_groups == [GROUP]
    group = _config(manager, GROUP)
    assert group["task"] == tasks
    assert group["aggregate_metric_list"] == [{"metric": "acc", "aggregation": "mean", "weight_by_size": False}]
    assert benchmark("russian_superglue").data_names() == []  # a Hub benchmark: nothing for write_tasks to resolve


@pytest.mark.parametrize("config", list(CASES))
def test_task_config(manager: TaskManager, config: str) -> None:
    cfg = _config(manager, f"rsg_{config}")
    assert cfg["task"] == f"rsg_{config}"
    assert cfg["dataset_path"] == HUB_DATASET
    assert "dataset_name" not in cfg  # the parquet export is read by data_files, not by config name
    assert cfg["output_type"] == "multiple_choice"
    assert (cfg["validation_split"], cfg["training_split"], cfg.get("test_split")) == ("validation", "train", None)
    assert cfg["num_fewshot"] == 0
    kwargs = cfg["dataset_kwargs"]
    assert re.fullmatch(r"[0-9a-f]{40}", kwargs["revision"])
    assert kwargs["data_files"] == {
        "train": f"{config}/train/*.parquet",
        "validation": f"{config}/validation/*.parquet",
    }
    metrics = [m["metric"] for m in cfg["metric_list"]]
    assert metrics == (["acc", "f1"] if config == "rcb" else ["acc"])
    assert all(m["higher_is_better"] for m in cfg["metric_list"])


def test_one_pinned_revision(manager: TaskManager) -> None:
    revisions = {_config(manager, f"rsg_{c}")["dataset_kwargs"]["revision"] for c in CASES}
    assert len(revisions) == 1
    assert revisions.pop() in (FOLDER / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("config", list(CASES))
def test_prompts_render_through_lm_eval(manager: TaskManager, config: str) -> None:
    task = _task(manager, config)
    docs, texts, choices = CASES[config]
    rendered = list(task.eval_docs)
    assert len(rendered) == 2
    for doc, text, doc_choices in zip(rendered, texts, choices, strict=True):
        assert task.doc_to_text(doc) == text
        assert task.doc_to_choice(doc) == doc_choices
        assert task.doc_to_target(doc) == doc["label"]
        requests = task.construct_requests(doc, task.doc_to_text(doc))
        assert [r.args for r in requests] == [(text, " " + choice) for choice in doc_choices]


@pytest.mark.parametrize("config", list(CASES))
def test_scoring_follows_the_label(manager: TaskManager, config: str) -> None:
    task = _task(manager, config)
    for doc in task.eval_docs:
        n = len(task.doc_to_choice(doc))
        for picked in range(n):
            lls = [(-1.0 if i == picked else -5.0, False) for i in range(n)]
            assert task.process_results(doc, lls)["acc"] == float(picked == doc["label"])


def test_rcb_f1_is_lm_eval_cb_macro_f1(manager: TaskManager) -> None:
    from lm_eval.tasks.super_glue.cb.aggregate import cb_multi_fi

    task = _task(manager, "rcb")
    first, second = task.eval_docs  # gold 0 and 2; the model picks 0 (right) and 1 (wrong)
    items = [
        task.process_results(first, [(-1.0, False), (-3.0, False), (-3.0, False)])["f1"],
        task.process_results(second, [(-3.0, False), (-1.0, False), (-3.0, False)])["f1"],
    ]
    assert [tuple(map(int, item)) for item in items] == [(0, 0), (2, 1)]  # (gold, pred)
    macro_f1 = task.aggregation()["f1"]
    assert macro_f1(items) == pytest.approx(1 / 3)  # F1: class 0 = 1, classes 1 and 2 = 0
    assert macro_f1(items) == pytest.approx(cb_multi_fi(items))
    more = items + [(1, 1), (2, 2), (2, 0), (1, 2)]
    assert macro_f1(more) == pytest.approx(cb_multi_fi(more))
    never_neutral = [(0, 0), (1, 1), (0, 1)]  # class 2 neither gold nor predicted: its F1 counts as 0
    assert macro_f1(never_neutral) == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's zero-division warning for class 2
        assert macro_f1(never_neutral) == pytest.approx(cb_multi_fi(never_neutral))


@pytest.mark.slow  # lm-eval indexes every task it ships
def test_ru_hub_names_are_lm_eval_tasks() -> None:
    suites = yaml.safe_load((TASKS_DIR / "suites.yaml").read_text(encoding="utf-8"))
    assert suites["ru_hub"]["tasks"] == RU_HUB
    assert suites[GROUP]["tasks"] == [GROUP]
    known = TaskManager()
    missing = [name for name in RU_HUB if name not in known.all_tasks]
    assert missing == []
    assert "global_mmlu_full_ru" in known.all_groups
    assert Path(known.task_index["xnli_ru"].yaml_path).name == "xnli_ru.yaml"
