"""Generated cases (tests/fuzz_cases.py) with one property: accepted with the right result, or refused with one line
(exit 2), or stopped by a signal with one line (130/143); no traceback, nothing written outside the case's folder,
nothing half-written, no hang. A fixed seed and about a minute in `make test`; twenty times the cases with
`--hypothesis-profile=long` (random seeds). Findings stay as explicit examples."""

from __future__ import annotations

import json
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz_cases import (
    console_case,
    damage,
    override_argv,
    override_case,
    reader_case,
    schema_keys,
    signal_case,
)
from tests.helpers import micro_overrides, reproduce

KEYS = schema_keys()


def scaled(n: int) -> int:
    """``n`` cases in the default profile, twenty times as many in the long one."""
    return max(1, n * settings().max_examples // 100)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def fresh(root: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=root))


@settings(max_examples=scaled(60))
@given(override_argv(KEYS))
@example(([], ["data.workers=10000"]))
@example(([], ["model=0"]))  # findings: a config group given a number, a list, a name too long for a file
@example(([], ["model=[300]"]))
@example(([], ["data=" + "x" * 3000]))
@example((["plan"], ["data.sources.ruslit.splitx=[',\nx]"]))  # finding: a newline echoed made two lines
@example((["prepare"], ["data.max_line_chars=\udcff"]))
@example((["plan"], ["plan.mfu=1e309"]))
@example(([], ["contamination.sets.rucola.fields.x=1"]))  # finding: a list entry named by a word (OmegaConf's int())
def test_overrides_are_accepted_or_refused_in_one_line(root: Path, case: tuple[list[str], list[str]]) -> None:
    override_case(*case, fresh(root))


@settings(max_examples=scaled(3))
@given(override_argv(KEYS))
@example((["train"], ["stages.stage1.optim.lr='\u202e'"]))
def test_overrides_through_the_console_script(root: Path, case: tuple[list[str], list[str]]) -> None:
    console_case(*case, fresh(root))


@settings(max_examples=scaled(300))
@given(damage())
@example(("compare reference", "FIFO", 0, 1))
@example(("model folder", "deeply nested", 100_000, 1))
@example(("model folder", "FIFO", 0, 1))
@example(("prepared shard", "huge", 0, 1))
@example(("source manifest", "FIFO", 0, 1))
def test_damaged_files_are_read_or_refused_in_one_line(root: Path, case: tuple[str, str, int, int]) -> None:
    reader_case(*case, root)


@pytest.fixture(scope="module")
def prepared_reference(tmp_path_factory) -> dict:
    whole = tmp_path_factory.mktemp("whole")
    reproduce("prepare", *micro_overrides(whole), "data.workers=2", cwd=whole, timeout=600)
    return json.loads(next((whole / "prepared").glob("*/manifest.json")).read_text(encoding="utf-8"))


@pytest.mark.slow  # a prepare per case, and the uninterrupted one
@settings(max_examples=scaled(2))
@given(st.sampled_from([signal.SIGINT, signal.SIGTERM]), st.floats(0.0, 12.0), st.booleans())
def test_signals_at_random_points(root: Path, prepared_reference: dict, signum: int, delay: float,
                                  group: bool) -> None:
    signal_case(fresh(root), signum, delay, group, prepared_reference)


# bench/probe_fresh.py's findings: overrides Hydra or the pre-flight took without doing what they say (the first two
# ran the whole recipe for minutes), refused in one line naming the key, in this process
PROBE_FINDINGS = [
    (["run"], ["~paths"], "~paths: a setting of the config cannot be deleted"),
    (["plan"], ["~compare"], "~compare: a setting"),
    (["run"], ["data.sources={}"], "data.sources={}: Hydra merges a mapping"),
    (["prepare"], ["trainer.devices=100000"], "trainer.devices=100000: 100,000 processes"),
    (["prepare"], ["trainer.num_nodes=1000000"], "trainer.num_nodes=1000000: 1,000,000 processes"),
    (["train"], ["trainer.devices=4096", "stages.stage1.batch_size=65536", "stages.stage1.micro_batch_size=16",
                 "stages.stage2.batch_size=65536", "stages.stage2.micro_batch_size=16"],
     "trainer.devices=4096: a CPU run starts one process per device"),
    (["prepare"], ["data.cache_dir=FILE/cache"], "data.cache_dir: "),
    (["prepare"], ["stages.stage2.epochs=1e9"], "stages.stage2.epochs=1000000000.0: more than 10,000 passes"),
    (["prepare"], ["eval.batch_size=1000000000"], "eval.batch_size=1000000000: its logits alone"),
    (["prepare"], ["eval.perplexity.batch_size=100000000"], "eval.perplexity.batch_size=100000000: its logits"),
    (["prepare"], ["stages.stage1.batch_size=1000000000000"], "stages.stage1.batch_size=1000000000000: x context"),
    (["prepare"], ["eval.num_fewshot=100000"], "eval.num_fewshot=100000: more examples"),
    (["prepare"], ["stages.stage1.optim.lr=1e10"], "stages.stage1.optim.lr=10000000000.0: is above 1,000"),
    (["prepare"], ["contamination.n=100000"], "contamination.n=100000: n-grams longer"),
]


@pytest.mark.parametrize("command,overrides,message", PROBE_FINDINGS, ids=[" ".join(c[1])[:40] for c in PROBE_FINDINGS])
def test_probe_findings_are_refused_in_one_line(root: Path, command: list[str], overrides: list[str],
                                                message: str) -> None:
    from reproduce.cli import split_command
    from reproduce.commands.preflight import load
    from reproduce.core.errors import UserError

    folder = fresh(root)
    (folder / "a_file").write_text("x")
    cmd, args = split_command([*command, *micro_overrides(folder),
                               *(o.replace("FILE", str(folder / "a_file")) for o in overrides)])
    with pytest.raises(UserError) as refused:
        load(cmd, args)
    assert message in str(refused.value) and "\n" not in str(refused.value), str(refused.value)


def test_an_entry_of_a_mapping_may_still_be_deleted(root: Path) -> None:
    """``~key`` of a mapping's entry (an evaluation set, a source) is no setting of the schema: it is taken."""
    from reproduce.cli import split_command
    from reproduce.commands.preflight import load

    cfg = load(*split_command(["plan", *micro_overrides(fresh(root)), "~contamination.sets.rublimp"]))
    assert cfg.contamination.sets and "rublimp" not in cfg.contamination.sets


@pytest.mark.parametrize("where", ["run lock", "run log", "prepared lock", "config record", "run's config record",
                                   "plan markdown"])
def test_links_at_the_files_a_run_makes_are_refused_before_any_work(root: Path, where: str) -> None:
    """bench/probe_fresh.py's findings: a link planted where a run makes its lock, log or config records, where
    prepare makes its lock, or where a plan writes its second file, is refused by the pre-flight in one line naming
    it, before any file is written (the writer refuses it too: ``O_NOFOLLOW``)."""
    from reproduce.cli import split_command
    from reproduce.commands.preflight import load
    from reproduce.config.compose import compose_config
    from reproduce.core.errors import UserError
    from reproduce.data.prepared_set import prepared_folder, prepared_lock

    folder = fresh(root)
    victim = folder / "victim.txt"
    victim.write_bytes(b"keep")
    overrides = micro_overrides(folder)
    link = {"run lock": folder / "runs" / "micro" / ".lock", "run log": folder / "runs" / "micro" / "reproduce.log",
            "prepared lock": prepared_lock(prepared_folder(compose_config("reproduce", overrides))),
            "config record": folder / "results" / "micro" / "config.yaml",
            "run's config record": folder / "runs" / "micro" / "config.yaml",
            "plan markdown": folder / "results" / "plan" / "micro.md"}[where]
    link.parent.mkdir(parents=True)
    link.symlink_to(victim)
    command = ["plan", "plan.corpus_tokens=800000"] if where == "plan markdown" else ["prepare"]
    with pytest.raises(UserError, match="is a symbolic link") as refused:
        load(*split_command([*command, *overrides]))
    assert str(link) in str(refused.value) and victim.read_bytes() == b"keep"
