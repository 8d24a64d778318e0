"""The console script: its commands, their help, and composition through typed configs."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reproduce.cli import COMMANDS
from reproduce.commands.checks import check_config
from reproduce.config.compose import compose_config
from reproduce.config.schema import RecipeConfig
from reproduce.core.errors import Interrupted, UserError, inherited_handlers, pass_on
from reproduce.core.paths import CONF_DIR, SOURCE_ROOT
from tests.helpers import REPRODUCE, reproduce, run

LAUNCH = SOURCE_ROOT / "launch"  # the launch scripts: at the top of the checkout, not in the package


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return reproduce(*args, cwd=cwd, code=None, timeout=120)


def test_help_lists_every_command_with_one_line(tmp_path: Path) -> None:
    out = _run("--help", cwd=tmp_path)
    assert out.returncode == 0
    for name, command in COMMANDS.items():
        assert f"  {name:<13} {command.summary}" in out.stdout.splitlines()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help_shows_its_config_groups(tmp_path: Path, name: str) -> None:
    out = _run(name, "--help", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith(f"reproduce {name}: ")
    for group in COMMANDS[name].groups:
        assert f"  {group:<11} " in out.stdout
    if name == "train":
        assert "rugpt3_large" in out.stdout and "mini" in out.stdout  # the model group's options


def test_unknown_command_lists_the_valid_ones(tmp_path: Path) -> None:
    out = _run("trian", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == ("error: unknown command 'trian'; commands: run, prepare, contamination, train, eval, "
                                  "generate, plan, publish, compare, paper, env (overrides look like key=value)")


def test_cfg_goes_through_hydra_and_composes_the_command(tmp_path: Path) -> None:
    out = _run("prepare", "--cfg", "job", "run_name=demo", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "run_name: demo" in out.stdout and "n_layer: 4" in out.stdout
    assert not list(tmp_path.iterdir())  # --cfg writes nothing


def test_every_entry_config_composes_typed_and_passes_its_checks() -> None:
    entries = {command.config_name for command in COMMANDS.values()}
    assert {p.stem for p in CONF_DIR.glob("*.yaml")} == entries  # no entry config that no command reads
    for name in sorted(entries - {"paper"}):
        cfg = compose_config(name, [])
        assert isinstance(cfg, RecipeConfig)
        check_config(cfg)
    assert compose_config("paper", []).paper.runs == ["mini"]
    assert compose_config("paper", []).paper.extra_runs == ["mini_xs", "mini_s"]


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF_DIR / "experiment").glob("rugpt3_*_paper.yaml")))
def test_paper_experiments_compose_and_pass_the_checks(experiment: str) -> None:
    cfg = compose_config("reproduce", [f"experiment={experiment}"])
    check_config(cfg)
    assert cfg.model.n_positions == 2048 and cfg.tokenizer.kind == "released" and cfg.tokenizer.vocab_size == 50257
    assert [s.context for s in cfg.stages.values()] == [1024, 2048]
    assert [s.epochs for s in cfg.stages.values()] == [3, 1]
    assert cfg.stages["stage2"].init_from == "stage1" and cfg.run_name == experiment


def _sbatch_overrides() -> list[str]:
    """The overrides on the srun line of launch/slurm.sbatch."""
    text = (LAUNCH / "slurm.sbatch").read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("srun "))
    words = shlex.split(line.split("||")[0])
    return [word for word in words if "=" in word and not word.startswith("--")]


def _torchrun_examples() -> list[list[str]]:
    """The overrides of each example in launch/torchrun.sh's header (``bash launch/torchrun.sh N <overrides>``)."""
    text = (LAUNCH / "torchrun.sh").read_text(encoding="utf-8")
    return [shlex.split(line.split("bash launch/torchrun.sh", 1)[1])[1:] for line in text.splitlines()
            if line.startswith("#") and "bash launch/torchrun.sh" in line]


def test_launch_scripts_parse_and_the_reproduce_command_lines_they_launch_compose(tmp_path: Path) -> None:
    assert sorted(p.name for p in LAUNCH.iterdir()) == ["slurm.sbatch", "torchrun.sh"]
    for script in ("slurm.sbatch", "torchrun.sh"):
        out = subprocess.run(["bash", "-n", str(LAUNCH / script)], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
    assert '.venv/bin/reproduce "$@"' in (LAUNCH / "torchrun.sh").read_text(encoding="utf-8")
    examples = _torchrun_examples()
    assert len(examples) == 2 and all(examples)
    for overrides in (_sbatch_overrides(), *examples):
        out = _run("--cfg", "job", *overrides, cwd=tmp_path)
        assert out.returncode == 0 and "run_name: " in out.stdout, (overrides, out.stderr)
    assert not list(tmp_path.iterdir())  # --cfg writes nothing


def test_scale_out_trainers_and_the_slurm_template_compose_and_pass_the_checks() -> None:
    overrides = _sbatch_overrides()
    assert "trainer=multinode" in overrides and "experiment=rugpt3_large_paper" in overrides
    cfg = compose_config("reproduce", overrides)
    check_config(cfg)
    assert (cfg.world_size, cfg.trainer.strategy, cfg.trainer.accelerator) == (128, "ddp", "gpu")
    with pytest.raises(UserError, match=re.escape("trainer.num_nodes=16: 128 processes (trainer.devices x "
                                                  "trainer.num_nodes) each take at least stages.stage1.micro_batch_"
                                                  "size=8 sequences, more than its batch_size=512 per step")):
        check_config(compose_config("reproduce", ["experiment=rugpt3_large_paper", "trainer=multinode"]))
    single_node = compose_config("reproduce", ["experiment=rugpt3_large_paper", "trainer=ddp"])
    check_config(single_node)
    assert single_node.world_size == 8


def test_fsdp_trainer_and_the_continued_pretraining_experiment_compose_and_pass_the_checks() -> None:
    fsdp = compose_config("reproduce", ["experiment=rugpt3_large_paper", "trainer=fsdp",
                                        "trainer.fsdp.activation_checkpointing=true"])
    check_config(fsdp)
    assert (fsdp.trainer.strategy, fsdp.trainer.fsdp.sharding_strategy) == ("fsdp", "FULL_SHARD")
    continued = compose_config("reproduce", ["experiment=rugpt3_small_continued"])
    check_config(continued)
    assert continued.tokenizer.kind == "pretrained"
    assert continued.tokenizer.name_or_path == continued.stages["stage1"].init_from == (
        "ai-forever/rugpt3small_based_on_gpt2")


def test_slurm_sweeps_launch_one_task_per_device_through_submitit(tmp_path: Path) -> None:
    out = _run("hydra/launcher=slurm", "trainer.devices=4", "trainer.num_nodes=2", "run_name=sweep", "--cfg", "all",
               "--resolve", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    launcher = yaml.safe_load(out.stdout)["hydra"]["launcher"]
    assert launcher["_target_"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher["nodes"], launcher["gpus_per_node"], launcher["tasks_per_node"]) == (2, 4, 4)
    assert launcher["name"] == "rugpt3-sweep" and launcher["max_num_timeout"] > 0


def test_a_stop_signal_goes_on_to_the_handler_a_launcher_installed_before_the_command() -> None:
    calls: list[int] = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))  # as submitit's requeue
    try:
        handlers = inherited_handlers()
    finally:
        signal.signal(signal.SIGUSR2, previous)
    pass_on(Interrupted("stopped", signal.SIGUSR2), handlers)
    pass_on(Interrupted("stopped", signal.SIGTERM), {signal.SIGTERM: signal.SIG_DFL})  # nothing to call: exit
    assert calls == [signal.SIGUSR2]


def test_every_step_command_runs_the_recipe_s_function_of_that_step() -> None:
    from reproduce.commands.pipeline import STEP_FUNCTIONS
    from reproduce.recipe.steps import NAMES

    assert tuple(STEP_FUNCTIONS) == NAMES
    assert all(COMMANDS[name].run.resolve() is STEP_FUNCTIONS[name] for name in NAMES)


def test_the_data_steps_load_no_training_or_evaluation_library() -> None:
    """`reproduce prepare` and `reproduce contamination` import their step's module only: none of Lightning,
    transformers' models, lm-eval or scikit-learn (about 3.5 s of a 6 s micro prepare)."""
    code = ("import sys; from reproduce.commands.table import COMMANDS; COMMANDS['prepare'].run.resolve(); "
            "COMMANDS['contamination'].run.resolve(); print([m for m in ('pytorch_lightning', "
            "'transformers.modeling_utils', 'lm_eval', 'sklearn') if m in sys.modules])")
    assert run([sys.executable, "-c", code]).stdout.strip() == "[]"


def test_no_branch_on_a_command_s_name_at_the_entrance() -> None:
    """The CLI and the pre-flight read the command table: none of their functions compares a name with a string."""
    import ast

    import reproduce.cli
    import reproduce.commands.preflight

    found = []
    for module in (reproduce.cli, reproduce.commands.preflight):
        for node in ast.walk(ast.parse(Path(module.__file__).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(isinstance(n, ast.Name) and n.id in ("name", "command")
                                                     for n in (node.left, *node.comparators)):
                found.append(f"{module.__name__}:{node.lineno} {ast.unparse(node)}")
    assert found == []


def test_help_into_a_closed_pipe_ends_without_a_traceback(tmp_path: Path) -> None:
    out = run(["sh", "-c", f"{shlex.quote(REPRODUCE)} --help | head -c 10"], cwd=tmp_path)
    assert out.stdout == "usage: rep" and "Traceback" not in out.stderr
