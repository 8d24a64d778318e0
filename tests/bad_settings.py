"""A table of settings that cannot run, each with the key or file its one-line error must name.

Shared by tests/test_bad_settings.py (exit code 2, message, no traceback, no files) and bench/fail_fast.py
(seconds to fail).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from reproduce.core.checksums import write_sums
from reproduce.core.paths import SOURCE_ROOT, default_mirror
from reproduce.evaluate.benchmarks import TASKS_DIR

MIRROR_ROOT = default_mirror()


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]  # command-line arguments after `reproduce`
    message: str  # must appear in the error line
    needs_no_gpu: bool = False  # the setting is only wrong on a machine without a CUDA GPU
    env: tuple[tuple[str, str], ...] = ()  # environment variables the command runs with
    own_process: str = ""  # why tests/test_bad_settings.py starts the console script for it (else: in-process)


# Reasons a setting runs through the console script in a process of its own
HUB = "huggingface_hub reads HF_HUB_OFFLINE once, when imported"
TASKS = "REPRODUCE_TASKS_DIR is read once, when reproduce.evaluate.benchmarks is imported"
NON_LATIN = "non-Latin text in the line, written in the encoding of the process's own stderr"
END_TO_END = "the console script end to end: its exit code and its one line"


SETTINGS = [
    Case("unknown source kind", ["data.sources.ruslit.kind=csv"],
         "data.sources.ruslit.kind='csv': choose one of manifest, text, jsonl, parquet, hf", own_process=END_TO_END),
    Case("misspelt source key", ["+data.sources.extra={kind: jsonl, path: [a.jsonl]}"],
         "data.sources.extra: Key 'path' not in 'SourceConfig'", own_process=END_TO_END),
    Case("JSONL source without paths", ["data=jsonl"], "data.sources.jsonl.paths: Missing mandatory value: paths"),
    Case("glob that matches nothing", ["data=text", "data.sources.text.paths=[nowhere/*.txt]"],
         "matches no file"),
    Case("shards of 0 tokens", ["data.shard_tokens=0"], "data.shard_tokens=0: must be a positive"),
    Case("0 workers", ["data.workers=0"], "data.workers=0: must be a positive"),
    Case("contamination min_tokens above n", ["contamination.min_tokens=20"],
         "contamination.min_tokens=20: must lie in [1, contamination.n=13]"),
    Case("evaluation set field that is not a column", ["contamination.sets.rublimp.fields=[nosuch]"],
         "contamination.sets.rublimp.fields: 'nosuch' is not a column of"),
    Case("epochs not a number", ["stages.stage1.epochs=abc"], "stages.stage1.epochs=abc"),
    Case("micro-batch 0", ["stages.stage1.micro_batch_size=0"], "stages.stage1.micro_batch_size=0: must be a positive"),
    Case("context 0", ["stages.stage1.context=0"], "stages.stage1.context=0: must be a positive"),
    Case("negative context", ["stages.stage1.context=-32"], "stages.stage1.context=-32: must be a positive"),
    Case("batch 0", ["stages.stage1.batch_size=0"], "stages.stage1.batch_size=0: must be a positive"),
    Case("negative batch", ["stages.stage1.batch_size=-16"], "stages.stage1.batch_size=-16: must be a positive"),
    Case("batch not a multiple", ["stages.stage1.batch_size=30"], "stages.stage1.batch_size=30: is not a multiple"),
    Case("learning rate 0", ["stages.stage1.optim.lr=0"], "stages.stage1.optim.lr=0.0: must be a positive"),
    Case("negative learning rate", ["stages.stage1.optim.lr=-1"], "stages.stage1.optim.lr=-1.0: must be a positive"),
    Case("min_lr above lr", ["stages.stage2.optim.min_lr=0.1"], "stages.stage2.optim.min_lr=0.1: must lie in [0"),
    Case("warmup fraction 2", ["stages.stage1.optim.warmup_fraction=2"], "warmup_fraction=2.0: must lie in [0, 1)"),
    Case("one beta", ["stages.stage1.optim.betas=[0.9]"], "stages.stage1.optim.betas=[0.9]: give two values"),
    Case("beta of 1", ["stages.stage1.optim.betas=[0.9,1.0]"], "stages.stage1.optim.betas[1]=1.0"),
    Case("record every 0 steps", ["stages.stage1.record_every_steps=0"], "stages.stage1.record_every_steps=0"),
    Case("init from a later stage", ["stages.stage1.init_from=stage2"], "stages.stage1.init_from='stage2'"),
    Case("init from a checkpoint without its tokenizer", ["stages.stage1.init_from=/nonexistent/tiny-gpt2"],
         "stages.stage1.init_from='/nonexistent/tiny-gpt2': is not a stage (stage1, stage2), so a released checkpoint"),
    Case("missing init_from path", ["stages.stage1.init_from=/nonexistent/tiny-gpt2", "tokenizer=pretrained",
                                    "tokenizer.vocab_size=300"],
         "stages.stage1.init_from='/nonexistent/tiny-gpt2': no such directory"),
    Case("hub checkpoint offline", ["experiment=rugpt3_small_continued", "trainer=cpu"],
         "stages.stage1.init_from='ai-forever/rugpt3small_based_on_gpt2': not a local directory", own_process=HUB),
    Case("pretrained tokenizer without a path", ["tokenizer=pretrained", "tokenizer.vocab_size=300"],
         "tokenizer.name_or_path=None: a pretrained tokenizer needs"),
    Case("copied positions without a shorter earlier stage", ["stages.stage1.new_positions=copy"],
         "stages.stage1.new_positions='copy': copies positions"),
    Case("context above positions", ["stages.stage2.context=512"],
         "stages.stage2.context=512: exceeds model.n_positions=256"),
    Case("heads do not divide", ["model.n_head=5"], "model.n_head=5: must divide model.n_embd=192"),
    Case("no layers", ["model.n_layer=0"], "model.n_layer=0: must be a positive"),
    Case("unknown activation", ["model.activation_function=swiglu"], "model.activation_function='swiglu'"),
    Case("model vocabulary below the tokenizer's", ["model.vocab_size=1000"], "model.vocab_size=1000"),
    Case("tokenizer too small", ["tokenizer.vocab_size=100"], "tokenizer.vocab_size=100"),
    Case("tokenizer kind", ["tokenizer.kind=sentencepiece"], "tokenizer.kind='sentencepiece': choose one of bbpe"),
    Case("released vocabulary size", ["tokenizer=rugpt3", "tokenizer.vocab_size=50000"],
         "tokenizer.vocab_size=50000: "),
    Case("precision fp8", ["trainer.precision=fp8"], "trainer.precision='fp8': choose one of auto, bf16-mixed"),
    Case("unknown accelerator", ["trainer.accelerator=quantum"], "trainer.accelerator='quantum': choose one of"),
    Case("FSDP on CPUs", ["trainer.strategy=fsdp"], "trainer.strategy='fsdp': Lightning's FSDP runs on GPUs only"),
    Case("unknown FSDP sharding", ["trainer=fsdp", "trainer.fsdp.sharding_strategy=ZERO3"],
         "trainer.fsdp.sharding_strategy='ZERO3': choose one of FULL_SHARD"),
    Case("no devices", ["trainer.devices=0"], "trainer.devices=0: must be a positive"),
    Case("derived Trainer argument", ["+trainer.args.max_steps=5"], "trainer.args.max_steps=5: is set by each stage"),
    Case("unknown Trainer argument", ["+trainer.args.max_stepz=5"], "trainer.args.max_stepz=5: not an argument"),
    Case("unknown loss", ["trainer.loss=fused"], "trainer.loss='fused': choose one of plain, chunked"),
    Case("loss chunks of 0 tokens", ["trainer.loss_chunk_tokens=0"], "trainer.loss_chunk_tokens=0: must be a positive"),
    Case("compile not a boolean", ["trainer.compile=maybe"], "trainer.compile"),
    Case("unknown compile mode", ["trainer.compile_mode=fastest"],
         "trainer.compile_mode='fastest': choose one of default, reduce-overhead, max-autotune"),
    Case("unknown attention kernel", ["model.attn_implementation=flash"],
         "model.attn_implementation='flash': choose one of eager, sdpa"),
    Case("vocabulary padded to a multiple of 0", ["model.pad_vocab_multiple=0"],
         "model.pad_vocab_multiple=0: must be a positive"),
    Case("compile without a C++ compiler", ["trainer.compile=true"], "trainer.compile=True: torch.compile on CPUs",
         env=(("CXX", "/nonexistent/c++"),)),
    Case("plan MFU above 1", ["plan", "experiment=rugpt3_large_paper", "plan.mfu=1.5"], "plan.mfu=1.5: must lie in"),
    Case("plan of a corpus of unknown size", ["plan"], "plan.corpus_tokens is not set and results/mini/data.json"),
    Case("GPU recipe without a GPU", ["experiment=rugpt3_small_paper"], "trainer.accelerator='gpu': no CUDA GPU",
         needs_no_gpu=True),
    Case("validation fraction 0", ["data.validation_fraction=0"], "data.validation_fraction=0.0: must lie in (0, 1)"),
    Case("test fraction 1.5", ["data.test_fraction=1.5"], "data.test_fraction=1.5: must lie in (0, 1)"),
    Case("held-out fractions leave nothing", ["data.validation_fraction=0.5", "data.test_fraction=0.5"],
         "leaves nothing to train on"),
    Case("perplexity max_tokens 0", ["eval.perplexity.max_tokens=0"], "eval.perplexity.max_tokens=0"),
    Case("eval contexts do not divide", ["eval.perplexity.contexts=[96,256]"], "eval.perplexity.contexts=[96, 256]"),
    Case("eval limit 0", ["eval.limit=0"], "eval.limit=0: must be a positive"),
    Case("eval suite of an unknown stage", ["eval.stages=[stage9]"], "eval.stages=['stage9']"),
    Case("eval dtype", ["eval.dtype=fp4"], "eval.dtype='fp4': choose one of"),
    Case("eval device", ["eval.device=tpu"], "eval.device='tpu': choose cpu, cuda"),
    Case("prefix token", ["eval.prefix_token=pad"], "eval.prefix_token='pad': choose one of eos, bos"),
    Case("unknown suite", ["eval", "model=nosuch", "suite=nosuch"], "eval.suite='nosuch': no such suite"),
    Case("task not in the suite", ["eval", "model=nosuch", "eval.tasks=[nosuch]"],
         "eval.tasks=['nosuch']: nosuch not in suite ru_local"),
    Case("hub suite offline", ["eval", "model=nosuch", "suite=ru_hub"],
         "eval.suite=ru_hub reads its data from the Hugging Face Hub, which is offline here (HF_HUB_OFFLINE is set)",
         env=(("HF_HUB_OFFLINE", "1"),), own_process=HUB),
    Case("TAPE with a k its protocol does not define", ["eval", "model=nosuch", "suite=tape", "eval.num_fewshot=3"],
         "eval.num_fewshot=3: suite tape defines k = 0, 1, 4, 8 demonstrations"),
    Case("TAPE task not in the suite", ["eval", "model=nosuch", "suite=tape", "eval.tasks=[tape_ethics]"],
         "eval.tasks=['tape_ethics']: tape_ethics not in suite tape"),
    Case("TAPE offline", ["eval", "model=nosuch", "suite=tape"],
         "eval.suite=tape reads its data from the Hugging Face Hub, which is offline here (HF_HUB_OFFLINE is set)",
         env=(("HF_HUB_OFFLINE", "1"),), own_process=HUB),
    Case("PenLP suite with a limit of items", ["eval", "model=nosuch", "suite=rucola_penlp", "eval.limit=5"],
         "eval.limit=5: suite rucola_penlp scores whole splits"),
    Case("missing model path", ["eval", "model=no/such/dir"], "model='no/such/dir': no such directory"),
    Case("hub model offline", ["eval", "model=ai-forever/nosuch-model"],
         "model='ai-forever/nosuch-model': not a local directory", env=(("HF_HUB_OFFLINE", "1"),), own_process=HUB),
    Case("generate without a model", ["generate", "prompt=Однажды"], "reproduce generate needs model="),
    Case("sampling temperature", ["generate", "model=nosuch", "eval.generate.temperature=-1"],
         "eval.generate.temperature=-1.0: must be 0 (greedy) or more"),
    Case("CUDA evaluation without a GPU", ["eval", "model=nosuch", "eval.device=cuda"], "eval.device=cuda: no CUDA",
         needs_no_gpu=True),
    Case("unknown model", ["model=rugpt3_huge"], "Could not find 'model/rugpt3_huge'"),
    Case("misspelt key", ["stages.stage1.contxt=64"], "stages.stage1.contxt"),
    Case("run name with a slash", ["run_name=a/b"], "run_name='a/b'"),
    Case("no paper runs", ["paper.runs=[]"], "paper.runs=[]"),
    Case("unknown command", ["trian"], "unknown command 'trian'"),
    Case("resume mode", ["resume=maybe"], "resume='maybe': choose one of auto, never"),
    Case("no checkpoints kept", ["stages.stage1.keep_checkpoints=0"], "stages.stage1.keep_checkpoints=0: must be a"),
    Case("checkpoint every 0 tokens", ["stages.stage2.checkpoint_every_tokens=0"],
         "stages.stage2.checkpoint_every_tokens=0: must be a positive number or null"),
    Case("sweep jobs sharing a run name", ["-m", "stages.stage1.optim.lr=1e-3,2e-3"], "is shared by sweep jobs"),
    Case("one bad job in a sweep", ["-m", "stages.stage1.optim.lr=1e-3,-1", "run_name=lr${stages.stage1.optim.lr}"],
         "stages.stage1.optim.lr=-1.0: must be a positive", own_process=END_TO_END),
    Case("paper of no runs", ["paper", "paper.runs=[]"], "paper.runs=[]"),
    Case("train with nothing prepared", ["train"],
         "no prepare output for this config (results/mini/data.json is missing)"),
    Case("eval with nothing trained", ["eval"], "no prepare output for this config"),
    # names that would reach outside their folders, or into another command's
    Case("run name of another command's folder", ["run_name=eval"], "run_name='eval': is the folder of another"),
    Case("run name of the published tables", ["run_name=published"], "run_name='published': is the folder of"),
    Case("run name of 300 characters", [f"run_name={'x' * 300}"], "has 300 characters, more than 100"),
    Case("run name starting with a dash", ["run_name=-x"], "run_name='-x': is not a plain folder name"),
    Case("blank run name", ["run_name=' '"], "run_name=' ': is not a plain folder name"),
    Case("run name with a line break", ["run_name=a\nb"], "run_name=a"),
    Case("evaluation name that climbs out", ["eval", "model=nosuch", "eval.name=../../outside/x"],
         "eval.name='../../outside/x': is not a plain folder name"),
    Case("absolute evaluation name", ["eval", "model=nosuch", "eval.name=/abs/path"],
         "eval.name='/abs/path': is not a plain folder name"),
    Case("extra paper run outside results", ["paper", "paper.extra_runs=[../outside/run]"],
         "paper.extra_runs='../outside/run': is not a plain folder name"),
    # values that pass their type and fail later
    Case("negative seed", ["seed=-1"], "seed=-1: must lie in [0, 4294967295]"),
    Case("seed of 2**32", ["seed=4294967296"], "seed=4294967296: must lie in [0, 4294967295]"),
    Case("negative split seed", ["data.split_seed=-1"], "data.split_seed=-1: must lie in [0"),
    Case("negative data seed of a stage", ["stages.stage2.data_seed=-3"], "stages.stage2.data_seed=-3: must lie in"),
    Case("infinite weight decay", ["stages.stage1.optim.weight_decay=inf"],
         "stages.stage1.optim.weight_decay=inf: must be a finite number"),
    Case("source weight nan", ["data.sources.ruslit.weight=nan"], "data.sources.ruslit.weight=nan: must be a finite"),
    Case("greedy samples of two", ["eval.generate.temperature=0"],
         "eval.generate.num_samples=2: greedy decoding (temperature 0) gives one sample per prompt"),
    Case("temperature nan", ["eval.generate.temperature=nan"], "eval.generate.temperature=nan: must be a finite"),
    Case("temperature inf", ["eval.generate.temperature=inf"], "eval.generate.temperature=inf: must be a finite"),
    Case("samples past the model's context", ["eval.generate.max_new_tokens=300"],
         "eval.generate.max_new_tokens=300: with the prompt"),
    Case("fp16 on a CPU", ["trainer.precision=16-mixed"], "trainer.precision='16-mixed': fp16 on CPUs"),
    Case("several nodes without a launcher", ["trainer.num_nodes=2", "stages.stage1.batch_size=16",
                                              "stages.stage2.batch_size=16"],
         "trainer.num_nodes=2: no multi-node launcher"),
    # Hydra's own errors
    Case("misspelt key with --cfg job", ["train", "--cfg", "job", "stages.stage1.contxt=64"],
         "Could not override 'stages.stage1.contxt'"),
    Case("unknown flag", ["--foo"], "unknown flag --foo", own_process=END_TO_END),
    Case("unknown --cfg choice", ["--cfg", "everything"], "--cfg everything: choose one of job, hydra, all"),
    Case("Cyrillic value left unquoted", ["eval.generate.prompts=[Привет]"],
         "quote a value with spaces or non-Latin letters, in the shell and for Hydra: "
         "\"eval.generate.prompts=['Привет']\"", own_process=NON_LATIN),
    Case("list left open", ["seed=3", "eval.tasks=[rublimp,"], "error: eval.tasks=[rublimp,: no viable alternative"),
    Case("more workers than the machine holds", ["data.workers=10000"], "data.workers=10000: more than 4 per core"),
    Case("missing tasks folder", ["eval", "model=nowhere"], "REPRODUCE_TASKS_DIR=/nonexistent/tasks: no such folder",
         env=(("REPRODUCE_TASKS_DIR", "/nonexistent/tasks"),), own_process=TASKS),
    # found by tests/test_fuzz.py
    Case("a config group given a number", ["model=0"], "model=0: choose one of the config group's options"),
    Case("a config group given a list", ["data=[text]"], "data=['text']: choose one of the config group's options"),
    Case("a tolerance of 1e308 sigmas", ["compare.sigmas=1e308"], "is more than 10: every run would be within it"),
    Case("a newline in a misspelt key's value", ["data.sources.ruslit.splitx=[',\nx]"], "\\n"),
    # trackers and the benchmarks during training
    Case("unknown logger", ["logger=[csv,neptune]"], "Could not load 'logger/neptune'"),
    Case("tracker added by hand", ["+logger.comet={}"], "logger.comet: no such tracker; choose from csv"),
    Case("W&B online without credentials", ["logger=wandb", "logger.wandb.offline=false"],
         "logger.wandb.offline=false: no W&B credentials", env=(("WANDB_API_KEY", ""), ("HOME", "/nonexistent"))),
    Case("in-training task that does not exist", ["eval.during_training.tasks=[rublimp,nosuch]"],
         "eval.during_training.tasks=['rublimp', 'nosuch']: nosuch not in suite ru_local"),
    Case("in-training suite that needs the network", ["eval.during_training.suite=ru_hub",
                                                      "eval.during_training.tasks=[xnli_ru]"],
         "eval.during_training.suite=ru_hub reads its data from the Hugging Face Hub, which is offline here"),
    Case("in-training interval of 0 tokens", ["eval.during_training.every_tokens=0"],
         "eval.during_training.every_tokens=0: must be a positive"),
    Case("in-training items 0", ["eval.during_training.limit=0"], "eval.during_training.limit=0: must be a positive"),
]


def file_settings(tmp: Path) -> list[Case]:
    """Bad inputs on disk: manifests, a corrupt evaluation file, an output folder that cannot be created."""
    lines = (TASKS_DIR / "rublimp" / "manifest.tsv").read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if line.startswith(("#", "path\t"))]
    first = next(line for line in lines if line.startswith("eval/rublimp/add_new_suffix.csv\t"))
    path, sha, url = first.split("\t")
    manifests = {
        "missing_column.tsv": f"{path}\t{sha}",
        "empty_sha256.tsv": f"{path}\t\t{url}",
        "corrupt_rublimp.tsv": f"{path}\t{'0' * 64}\t{url}",  # the mirror's file no longer matches its sha256
    }
    for name, row in manifests.items():
        (tmp / name).write_text("\n".join([*header, row]) + "\n", encoding="utf-8")
    (tmp / "a_file").write_text("not a folder\n", encoding="utf-8")
    model, released = tmp / "model", MIRROR_ROOT / "tokenizers" / "rugpt3"  # a model directory as far as checks read
    model.mkdir(exist_ok=True)
    for name in ("config.json", "vocab.json", "merges.txt"):
        shutil.copy(released / name, model / name)
    save_file({"wte": torch.zeros(1)}, model / "model.safetensors")  # the checks read its header; nothing is loaded
    config = json.loads((released / "config.json").read_text(encoding="utf-8"))
    folders = {"remote_code": {"auto_map": {"AutoModelForCausalLM": "modeling.Evil"}},
               "unknown_type": {"model_type": "evil_lm"}, "not_causal": {"model_type": "vit"}, "pickled": {}}
    for name, changes in folders.items():
        shutil.copytree(model, tmp / name, dirs_exist_ok=True)
        (tmp / name / "config.json").write_text(json.dumps({**config, **changes}), encoding="utf-8")
    (tmp / "pickled" / "model.safetensors").unlink()
    shutil.copytree(model, tmp / "empty_weights", dirs_exist_ok=True)
    (tmp / "empty_weights" / "model.safetensors").write_bytes(b"")
    (tmp / "pickled" / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    shutil.copytree(model, tmp / "remote_tokenizer", dirs_exist_ok=True)
    (tmp / "remote_tokenizer" / "tokenizer_config.json").write_text(
        json.dumps({"auto_map": {"AutoTokenizer": ["tok.Evil", None]}}), encoding="utf-8")
    for name in ("export", "damaged_export"):  # exported models as far as publish checks them
        shutil.copytree(model, tmp / name, dirs_exist_ok=True)
        (tmp / name / "README.md").write_text("---\nlanguage: ru\n---\n", encoding="utf-8")
        write_sums(tmp / name, skip=("README.md",))
    (tmp / "damaged_export" / "config.json").write_text("{}", encoding="utf-8")
    (tmp / "binary.txt").write_bytes(b"\x00\x01\x02 not text")
    (tmp / "latin1.txt").write_bytes("Ça ira, façade".encode("latin-1"))
    records = tmp / "records"  # results of runs whose config record is unreadable or missing
    for run, record in (("broken", b"\xff\xfe: not yaml"), ("unrecorded", None)):
        (records / run).mkdir(parents=True, exist_ok=True)
        (records / run / "data.json").write_text("{}\n", encoding="utf-8")
        if record is not None:
            (records / run / "config.yaml").write_bytes(record)
    (tmp / "no_tokenizer").mkdir(exist_ok=True)
    shutil.copy(released / "config.json", tmp / "no_tokenizer" / "config.json")
    mirror = tmp / "mirror"  # a mirror whose first RuBLiMP file was edited
    (mirror / "eval" / "rublimp").mkdir(parents=True, exist_ok=True)
    (mirror / "eval" / "rublimp" / "add_new_suffix.csv").write_text("id,source_sentence\n0,x\n", encoding="utf-8")
    results = tmp / "results"  # the published tables and a run's empty result files
    shutil.copytree(SOURCE_ROOT / "results" / "published", results / "published", dirs_exist_ok=True)
    shutil.copy(SOURCE_ROOT / "results" / "architectures.json", results / "architectures.json")  # up to date
    (results / "r").mkdir(exist_ok=True)
    for name in ("summary.json", "curves.json"):
        (results / "r" / name).write_text("{}\n", encoding="utf-8")
    typed = json.loads((SOURCE_ROOT / "results" / "mini" / "summary.json").read_text(encoding="utf-8"))
    typed["perplexity"][0]["context"] = "abc"  # a string where the table needs an integer
    (results / "typed").mkdir(exist_ok=True)
    (results / "typed" / "summary.json").write_text(json.dumps(typed), encoding="utf-8")
    shutil.copy(SOURCE_ROOT / "results" / "mini" / "curves.json", results / "typed" / "curves.json")
    return [
        Case("missing manifest", [f"data.sources.ruslit.manifest={tmp / 'absent.tsv'}"],
             "absent.tsv': not found in the working directory or conf/"),
        Case("manifest row missing a column", [f"data.sources.ruslit.manifest={tmp / 'missing_column.tsv'}"],
             "missing_column.tsv line 5: 2 tab-separated columns, expected 3"),
        Case("manifest row with an empty sha256", [f"data.sources.ruslit.manifest={tmp / 'empty_sha256.tsv'}"],
             "empty_sha256.tsv line 5: sha256 '' is not 64 hex digits"),
        Case("corrupt RuBLiMP file",
             [f"contamination.sets.rublimp.manifest={tmp / 'corrupt_rublimp.tsv'}"],
             "add_new_suffix.csv: sha256 8103d5659c73… does not match the manifest's 000000000000…",
             own_process=NON_LATIN),
        Case("evaluation file that changed in the mirror", ["eval", f"model={model}", f"data.mirror={mirror}",
                                                             f"data.cache_dir={tmp / 'empty_cache'}",
                                                             "data.allow_download=false"],
             "add_new_suffix.csv: sha256 "),
        Case("RuCoLA train split missing for the PenLP threshold",
             ["eval", f"model={model}", "suite=rucola_penlp", f"data.mirror={mirror}",
              f"data.cache_dir={tmp / 'empty_cache'}", "data.allow_download=false"],
             "eval.suite=rucola_penlp needs the train split, on which the PenLP threshold is chosen: "
             "eval/rucola/in_domain_train.csv: not found in"),
        Case("checkpoint without its tokenizer", ["eval", f"model={tmp / 'no_tokenizer'}"],
             "no_tokenizer has no tokenizer (tokenizer.json, or vocab.json and merges.txt)"),
        Case("perplexity texts that match nothing",
             ["eval", f"model={model}", f"eval.perplexity.texts=[{tmp}/*.nosuch]"],
             "eval.perplexity.texts: "),
        Case("results folder under a file", [f"paths.results={tmp / 'a_file' / 'results'}"],
             "paths.results: "),
        Case("paper without the published tables", ["paper", f"paths.results={tmp}"],
             "published/architectures.csv not found: copy results/published/"),
        Case("paper of a run without results", ["paper", f"paths.results={results}", "paper.runs=[nosuch]"],
             "nosuch/summary.json not found: run `reproduce run_name=nosuch` first"),
        Case("paper of a malformed results file", ["paper", f"paths.results={results}", "paper.runs=[r]",
                                                   f"paths.paper={tmp / 'paper'}"],
             "r/summary.json: no field run; regenerate the file"),
        Case("paper of a wrongly typed results field", ["paper", f"paths.results={results}", "paper.runs=[typed]",
                                                        f"paths.paper={tmp / 'paper'}"],
             "typed/summary.json: field perplexity[0].context is 'abc', not an integer"),
        Case("model folder with code of its own", ["eval", f"model={tmp / 'remote_code'}"],
             "its config.json maps to code of its own (auto_map), which this package never runs"),
        Case("model folder of a type transformers does not know", ["eval", f"model={tmp / 'unknown_type'}"],
             "model_type 'evil_lm' is not a causal language model that transformers knows"),
        Case("model folder that is no causal LM", ["generate", f"model={tmp / 'not_causal'}", "prompt=x"],
             "model_type 'vit' is not a causal language model"),
        Case("model folder with pickled weights", ["eval", f"model={tmp / 'pickled'}"],
             "its weights are pickled (pytorch_model.bin), which this package does not load"),
        Case("model folder with an empty weights file", ["eval", f"model={tmp / 'empty_weights'}"],
             "model.safetensors is not a readable safetensors file"),
        Case("tokenizer with code of its own", ["eval", f"model={tmp / 'remote_tokenizer'}"],
             "its tokenizer_config.json maps to code of its own"),
        Case("stride past the model's context", ["eval", f"model={model}", "eval.perplexity.stride=99999"],
             "eval.perplexity.stride=99999: is more than the context of"),
        Case("generation past the model's context", ["generate", f"model={model}", "prompt=Однажды",
                                                     "eval.generate.max_new_tokens=4000"],
             "eval.generate.max_new_tokens=4000: with the prompt 'Однажды'", own_process=NON_LATIN),
        Case("texts that are no text", ["eval", f"model={model}", f"eval.perplexity.texts=[{tmp}/binary.txt,"
                                                                  f"{tmp}/latin1.txt]"],
             "no file holds text (each is empty, binary, or neither UTF-8 nor cp1251 Russian)"),
        Case("publish while offline", ["publish", f"model={tmp / 'export'}", "repo_id=user/name"],
             "uploads to the Hugging Face Hub, which is offline here (HF_HUB_OFFLINE is set)",
             env=(("HF_HUB_OFFLINE", "1"),), own_process=HUB),
        Case("publish a damaged export", ["publish", f"model={tmp / 'damaged_export'}", "repo_id=user/name"],
             "config.json does not match its sha256"),
        Case("publish without a repository", ["publish", f"model={tmp / 'export'}"],
             "reproduce publish needs model=<exported model folder> and repo_id=<user/name>"),
        Case("unreadable config record", ["train", f"paths.results={records}", "run_name=broken"],
             "broken/config.yaml: unreadable config record"),
        Case("results without their config record", ["train", f"paths.results={records}", "run_name=unrecorded"],
             "holds data.json of prepare, and its config.yaml does not say which config made it"),
        Case("paper folder under a file", ["paper", f"paths.results={results}", "paper.runs=[r]",
                                           f"paths.paper={tmp / 'a_file' / 'paper'}"], "paths.paper: "),
        Case("tracker folder under a file", ["logger=[csv,tensorboard]",
                                             f"logger.tensorboard.save_dir={tmp / 'a_file' / 'tb'}"],
             "logger.tensorboard.save_dir: "),
    ]
