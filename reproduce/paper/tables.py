"""Tables of our runs and evaluated models, beside the published numbers where there are any.

Every number is a :class:`~reproduce.paper.reader.Num` read from a field of a ``results/`` file.
"""

from __future__ import annotations

from typing import Any

from reproduce.core.arithmetic import ARCHITECTURE_KEYS
from reproduce.core.layout import ARCHITECTURES, CONTAMINATION, SAMPLES, SEED_SPREAD, SUMMARY
from reproduce.core.records import top_level_tasks
from reproduce.paper.formats import DASH, NOT_REPORTED, Table
from reproduce.paper.reader import Results, combine, demonstrations, eval_perplexities, scored_models, spread_cell

ARCH_FIELDS = (*ARCHITECTURE_KEYS, "parameters")  # the architecture table's columns
SEEDS_NOTE = ("Over seeds: mean ± sample standard deviation over the run's seed and its seed runs (other training "
              "seeds, the same data and tokenizer; results/<run>/seed_spread.json, written by reproduce compare).")


def _meta_note(run: str, meta: dict[str, Any]) -> str:
    keys = ("package_version", "git_commit", "torch", "transformers", "lm_eval", "device", "dtype", "seed")
    return f"{run}: " + ", ".join(f"{k} {meta[k]}" for k in keys if k in meta) + "."


def architecture_table(results: Results) -> Table:
    """Our configs' architecture beside the released checkpoints' ``config.json``."""
    ours: dict[str, Any] = results.load(ARCHITECTURES)["models"]
    pub_rows = results.published("architectures.csv", ARCH_FIELDS)
    published = {r["model"]: i for i, r in enumerate(pub_rows)}
    by_name = {name.removeprefix("rugpt3_"): name for name in ours}
    rows = []
    for model in [*published, *sorted(n for n in by_name if n not in published)]:
        mine, pub = by_name.get(model), published.get(model)
        cells = [combine("{} / {}",
                         results.num(ARCHITECTURES, "models", mine, f, fmt=",") if mine else DASH,
                         results.num("published/architectures.csv", pub, f, fmt=",") if pub is not None else DASH)
                 for f in ARCH_FIELDS]
        if mine and pub is not None:
            differ = [f for f in ARCH_FIELDS if int(ours[mine][f]) != int(pub_rows[pub][f])]
            match = "yes" if not differ else "no: " + ", ".join(differ)
        else:
            match = DASH + (" (no published counterpart)" if pub is None else " (no config of ours)")
        rows.append([model, *cells, match])
    notes = [
        f"Each cell: our config ({results.label(ARCHITECTURES)}) / the published value; {DASH} where there "
        "is no counterpart.",
        "Published parameters are computed, not printed by the authors: GPT-2 formula with tied embeddings, "
        "V*d + P*d + L*(12*d^2 + 13*d) + 2*d.",
        *(f"{r['model']}: {r['source']}." for r in pub_rows),
    ]
    return Table(name="architectures", caption="Model architectures: ours / published (config.json of the released "
                 "checkpoints)", headers=["model", *ARCH_FIELDS, "match"], rows=rows, notes=notes,
                 sources=[results.label(ARCHITECTURES), results.label("published/architectures.csv")])


def perplexity_table(results: Results, runs: list[str]) -> Table:
    """Each run's stages at every eval context and its unigram baseline, every model scored by ``reproduce eval``,
    and the published full-size test perplexities (a different test set: not comparable)."""
    rows, notes, sources = [], [], []
    for run in runs:
        name = f"{run}/{SUMMARY}"
        summary = results.load(name)
        sources.append(results.label(name))
        for i, p in enumerate(summary["perplexity"]):
            seeds = spread_cell(results, run, f"{p['stage']} perplexity @{p['context']}", ".2f")
            rows.append([run, p["stage"], results.num(name, "stages", p["stage"], "parameters", fmt=","),
                         *(results.num(name, "perplexity", i, key, fmt=fmt) for key, fmt in
                           (("context", "d"), ("tokens", ","), ("perplexity", ".2f"), ("bits_per_byte", ".3f"),
                            ("ratio_to_unigram", ".3f"))), seeds or DASH])
        rows.append([run, "unigram", DASH, DASH, results.num(name, "unigram", "tokens", fmt=","),
                     results.num(name, "unigram", "perplexity", fmt=".2f"),
                     results.num(name, "unigram", "bits_per_byte", fmt=".3f"), DASH, DASH])
        notes.append(_meta_note(run, summary.get("meta", {})))
    for name in eval_perplexities(results):
        report = results.load(name)
        sources.append(results.label(name))
        rows.append([name.split("/")[1], "reproduce eval",
                     results.num(name, "parameters", fmt=",") if "parameters" in report else DASH,
                     *(results.num(name, key, fmt=fmt) for key, fmt in
                       (("context", "d"), ("tokens", ","), ("perplexity", ".2f"), ("bits_per_byte", ".3f"))), DASH,
                     DASH])
        notes.append(f"{name.split('/')[1]}: texts {report['meta'].get('texts')}, stride {report['stride']}.")
    published = results.published("perplexity.csv", ("test_perplexity",))
    params = {r["model"]: i for i, r in enumerate(results.published("architectures.csv", ARCH_FIELDS))}
    for i, r in enumerate(published):
        pub_params = params.get(r["model"])
        rows.append([f"ruGPT-3 {r['model']} (published†)", DASH,
                     results.num("published/architectures.csv", pub_params, "parameters", fmt=",")
                     if pub_params is not None else DASH, DASH, DASH,
                     results.num("published/perplexity.csv", i, "test_perplexity", fmt="s")
                     if r["test_perplexity"] else NOT_REPORTED, DASH, DASH, DASH])
        notes.append(f"† {r['model']}: {r['source']}" + (f" ({r['note']})" if r["note"] else "") + ".")
    sources += [results.label("published/perplexity.csv"), results.label("published/architectures.csv")]
    notes[:0] = [
        "Ours: sliding windows over the run's test documents (one window per context); unigram: the train split's "
        "token frequencies on the same tokens. reproduce eval: whole texts at the model's context.",
        "† Published test perplexities are the full-size models' on SberDevices' own test set with the ruGPT-3 "
        "tokenizer (model cards): not comparable with ours; bits/byte is comparable across tokenizers.",
        SEEDS_NOTE,
    ]
    return Table(name="perplexity", caption="Test perplexity and bits per byte: our runs' stages, models scored with "
                 "reproduce eval, and the published full-size models (different test set)",
                 headers=["model", "stage", "parameters", "context", "eval tokens", "perplexity", "bits/byte",
                          "ppl / unigram ppl", "perplexity over seeds"], rows=rows, notes=notes,
                 sources=sources + [results.label(f"{run}/{SEED_SPREAD}") for run in runs
                                    if results.has(f"{run}/{SEED_SPREAD}")])


# Known columns of the zero-shot table: (task, metric, header), in this order; other tasks follow.
SUITE_COLUMNS = (("rublimp", "acc", "RuBLiMP acc"), ("rublimp", "tie", "RuBLiMP ties"),
                 ("xwinograd_ru_local", "acc", "XWinograd-ru acc"),
                 ("parus_crowd_majority", "acc", "PARus acc (crowd majority)"),
                 ("rucola_indomain_dev", "acc", "RuCoLA acc"), ("rucola_indomain_dev", "mcc", "RuCoLA MCC"))


def zero_shot_table(results: Results, runs: list[str]) -> Table:
    """Every scored run stage and evaluated model on its suite's tasks, zero-shot (k-shot results files left out)."""
    scored = [s for s in scored_models(results, runs) if demonstrations(results, s) == 0]
    metrics = {(s.model, s.label): results.value(s.file, *s.key) for s in scored}
    tasks = top_level_tasks({t for m in metrics.values() for t in m})
    known = [(t, m, h) for t, m, h in SUITE_COLUMNS if t in tasks]
    other = [(t, m, f"{t} {m}") for t in tasks if t not in {k[0] for k in known}
             for m in sorted({m for ms in metrics.values() for m in ms.get(t, {})} - {"n"})]
    columns = [c for c in known + other if any(c[1] in ms.get(c[0], {}) for ms in metrics.values())]
    rows, counts = [], {}
    for s in scored:
        got = metrics[(s.model, s.label)]
        rows.append([s.model, s.label, *(results.num(s.file, *s.key, task, metric, fmt=".3f")
                                         if metric in got.get(task, {}) else DASH for task, metric, _ in columns)])
        counts.update({task: int(got[task]["n"]) for task, _, _ in columns if "n" in got.get(task, {})})
        seeds = [spread_cell(results, s.model, f"{s.label} {task} {metric}", ".3f") if s.of_run else None
                 for task, metric, _ in columns]
        if any(seeds):  # the run's stage over its seeds, beside its own seed's row
            rows.append([s.model, f"{s.label}, over seeds", *(cell or DASH for cell in seeds)])
    notes = [
        "Zero-shot log-likelihood scoring through lm-eval (reproduce/evaluate/tasks/); items: "
        + ", ".join(f"{task} {n:,}" for task, n in counts.items()) + ".",
        "RuBLiMP: a pair is right when the grammatical sentence is strictly more likely; ties are reported, not "
        "counted as right. XWinograd-ru: partial scoring (the continuation after the candidate). PARus: labels are "
        "the majority of three crowd votes on the test set (gold labels are hidden), an approximation. RuCoLA: "
        "in-domain dev, acceptability as a yes/no question; MCC is Matthews' correlation.",
        "Chance: RuBLiMP, XWinograd-ru and PARus 0.5; RuCoLA MCC 0. The published Russian SuperGLUE rows are "
        "fine-tuned submissions and stand in their own table (russian_superglue_leaderboard).",
        SEEDS_NOTE,
    ]
    return Table(name="zero_shot", caption="Russian tasks, zero-shot: our runs' stages and every model scored with "
                 "reproduce eval", headers=["model", "stage / suite", *[h for _, _, h in columns]], rows=rows,
                 notes=notes, sources=list(dict.fromkeys(
                     [results.label(s.file) for s in scored] + [results.label(f"{run}/{SEED_SPREAD}") for run in runs
                                                                 if results.has(f"{run}/{SEED_SPREAD}")])))


def samples_table(results: Results, runs: list[str]) -> Table:
    """The first fixed-seed sample of each prompt from every stage (line breaks shown as ⏎)."""
    rows, notes, sources = [], [], []
    for run in runs:
        name = f"{run}/{SAMPLES}"
        if not results.has(name):
            continue
        report = results.load(name)
        sources.append(results.label(name))
        for stage, samples in sorted(report["stages"].items()):
            rows += [[run, stage, results.num(name, "stages", stage, i, "prompt", fmt="text"),
                      results.num(name, "stages", stage, i, "text", fmt="text")]
                     for i, s in enumerate(samples) if s["sample_index"] == 0]
        notes.append(f"{run}: " + ", ".join(f"{k} {v}" for k, v in report["settings"].items())
                     + "; the prompt follows </s>, as a document's start.")
    return Table(name="samples", caption="Samples of every stage (fixed seed)",
                 headers=["run", "stage", "prompt", "continuation"], rows=rows, notes=notes, sources=sources)


def contamination_table(results: Results, runs: list[str]) -> Table:
    """Per evaluation set (and the corpus's test documents): how many items share an n-token sequence with the train
    split, for every listed run that has ``results/<run>/contamination.json``."""
    names = [f"{run}/{CONTAMINATION}" for run in runs if results.has(f"{run}/{CONTAMINATION}")]
    several = len(names) > 1
    rows, notes, spans = [], [], []
    for name in names:
        run, report = name.split("/")[0], results.load(name)
        for s in sorted(report["sets"], key=lambda s: (s == "test_works", s)):  # the corpus's own test documents last
            r, label = report["sets"][s], f"{run}: {s}" if several else s
            rows.append([label, *(results.num(name, "sets", s, k, fmt=",") for k in ("items", "checked",
                                                                                    "contaminated")),
                         DASH if r["share"] is None else results.num(name, "sets", s, "share", fmt=".2%"),
                         results.num(name, "n", fmt="d")])
            if r["examples"]:
                notes.append(f"{label}: e.g. {', '.join(r['examples'])}.")
        spans.append((f"{run}: " if several else "") + f"{report['train_tokens']:,} train tokens")
    reports = [results.load(name) for name in names]
    ns = sorted({int(r["n"]) for r in reports})
    min_tokens = sorted({int(r.get("min_tokens", 0)) for r in reports})
    notes[:0] = [
        "An item is contaminated when one of its n-token sequences (token ids of the run's tokenizer) occurs in the "
        "train split; each text is matched as is and after a leading space. share = contaminated / checked.",
        f"Items shorter than n tokens are matched whole; items shorter than {'/'.join(map(str, min_tokens))} tokens "
        "are not checked (items - checked). Items are distinct texts per source file.",
    ]
    if any("test_works" in r["sets"] for r in reports):
        notes.insert(2, "test_works: the corpus's test split, one item per document.")
    n_text = f"{ns[0]}-token" if len(ns) == 1 else "n-token"
    return Table(name="contamination", caption=f"Evaluation items sharing a {n_text} sequence with the train split "
                 f"({'; '.join(spans)})", headers=["set", "items", "checked", "contaminated", "share", "n"],
                 rows=rows, notes=notes, sources=[results.label(name) for name in names])
