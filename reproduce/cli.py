"""Console entry point: ``reproduce [command] [key=value ...]``.

A single run composes its config, checks everything before any work (exit code 2 and one line on a
problem), then runs. Sweeps (``-m``) and Hydra's own flags (``--cfg``, ``--info``, ``--hydra-help``) go
through ``hydra.main``; every combination of a sweep is checked before its first job starts. The command
line is never rewritten: Lightning re-executes it as typed to start more processes.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Iterator
from typing import Any

import hydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from reproduce import __version__
from reproduce.commands.preflight import load
from reproduce.commands.table import COMMANDS, Command
from reproduce.config.compose import compose_config, one_line
from reproduce.config.schema import PaperCommandConfig, RecipeConfig
from reproduce.core.environment import warning as lock_warning
from reproduce.core.errors import (
    Differs,
    Interrupted,
    Stopped,
    UserError,
    inherited_handlers,
    pass_on,
    printable,
    stop_on_signals,
)
from reproduce.core.io import disk_error
from reproduce.core.locks import locked
from reproduce.core.logs import setup_logging, silence_progress_bars
from reproduce.core.paths import CONF_DIR
from reproduce.recipe.record import remove_stale_temporaries, start_steps
from reproduce.train.distributed import is_rank_zero

HELP = ("-h", "--help")
MULTIRUN = ("-m", "--multirun")
# Hydra's flags that reproduce passes on to hydra.main, and whether each takes a value (None: optionally, one of
# INFO_CHOICES); any other flag is an error of one line.
HYDRA_FLAGS = {"--hydra-help": False, "--cfg": True, "-c": True, "--resolve": False,
               "--package": True, "-p": True, "--info": None, "-i": None, "--multirun": False, "-m": False,
               "--run": False, "-r": False, "--shell-completion": False, "-sc": False}
CFG_CHOICES = ("job", "hydra", "all")
INFO_CHOICES = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")


def usage() -> str:
    lines = ["usage: reproduce [command] [key=value ...]", "", "commands:"]
    lines += [f"  {name:<13} {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "Without a command, `reproduce` runs the whole recipe (run). Any value can be overridden as",
              "key=value (e.g. model=rugpt3_small run_name=small); `reproduce <command> --help` lists its config",
              "groups, `reproduce <command> --cfg job` prints its composed config, `-m` sweeps over values."]
    return "\n".join(lines)


def command_help(command: Command) -> str:
    lines = [f"reproduce {command.name}: {command.summary}", f"config: conf/{command.config_name}.yaml", "",
             "config groups (choose with group=option):"]
    for group in command.groups:
        # a file whose name starts with "_" is shared by the group's options (conf/data/_common.yaml), not one of them
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))
        lines.append(f"  {group:<11} {', '.join(options)}")
    lines += ["", "Override any value with key=value (`reproduce <command> --cfg job` shows them all); `-m` sweeps",
              "over comma-separated values; `--hydra-help` lists Hydra's own flags."]
    return "\n".join(lines)


QUOTED_SHORT_KEYS = ("model", "prompt", "reference")  # free text: Hydra's grammar refuses e.g. Cyrillic unquoted


def _quoted(value: str) -> str:
    """``value`` as one Hydra quoted string (unless the user quoted it already)."""
    if value[:1] in ("'", '"'):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def expand_short_keys(command: Command, args: list[str]) -> list[str]:
    """A command's short keys in full: ``reproduce eval model=X`` -> ``eval.model='X'``."""
    expanded = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if key in command.short_keys and sep:
            arg = f"{command.short_keys[key]}={_quoted(value) if key in QUOTED_SHORT_KEYS else value}"
        expanded.append(arg)
    return expanded


def split_command(argv: list[str]) -> tuple[Command, list[str]]:
    """The command (default: run) and the arguments after it (short keys expanded); an unknown command is one clear
    error."""
    if argv and argv[0] in COMMANDS:
        command = COMMANDS[argv[0]]
        return command, expand_short_keys(command, argv[1:])
    if argv and not argv[0].startswith(("-", "~", "+")) and "=" not in argv[0]:
        raise UserError(f"unknown command {argv[0]!r}; commands: {', '.join(COMMANDS)} (overrides look like "
                        "key=value)")
    return COMMANDS["run"], argv


def execute(command: Command, cfg: RecipeConfig | PaperCommandConfig) -> None:
    """Run a checked config: its function, found in the command table (reproduce/commands/table.py). A command that runs
    recipe steps holds its run's lock, logs to the run's log file, removes stale temporaries and records the config
    first; the others (a plan, the paper, scoring a given model, ...) keep no run log, record or temporaries."""
    if command.libraries and not cfg.verbose:
        silence_progress_bars()
    function = command.function(cfg).resolve()  # imports the libraries, once their progress bars are off
    steps = command.steps_run(cfg)
    if not steps:
        setup_logging(None, cfg.verbose)
        function(cfg)
        return
    rank_zero = is_rank_zero(cfg.trainer.devices)
    # one process per run: rank zero holds runs/<run>/.lock (the other ranks are its own, started by the launcher)
    with locked(cfg.layout.work, "run") if rank_zero else contextlib.nullcontext():
        setup_logging(cfg.layout.log_file, cfg.verbose, rank_zero)
        if rank_zero:  # the other ranks start once rank zero has done this (Lightning starts them from fit)
            if line := lock_warning():  # the digits are promised for the lock's versions
                print(line, file=sys.stderr, flush=True)
            remove_stale_temporaries(cfg.layout.results, cfg.layout.work)
            if command.before_steps is not None:
                command.before_steps(cfg)
            start_steps(cfg, steps)
        function(cfg)


def sweep(overrides: list[str]) -> list[list[str]]:
    """Every combination of a basic sweep (``a=1,2 b=x,y``), as override lists."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as exc:
        raise UserError(one_line(exc)) from None
    choices = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
               else [o.input_line] for o in parsed]
    return [list(combo) for combo in itertools.product(*choices)]


def check_sweep(command: Command, overrides: list[str]) -> None:
    """Every job of a sweep passes the checks, and no two jobs share a run name, before the first job starts."""
    owners: dict[str, list[str]] = {}
    for combo in sweep(overrides):
        cfg = load(command, combo)
        if isinstance(cfg, RecipeConfig):
            if cfg.run_name in owners:
                raise UserError(f"run_name={cfg.run_name!r} is shared by sweep jobs ({' '.join(owners[cfg.run_name])}"
                                f" and {' '.join(combo)}); name runs after the swept keys, e.g. "
                                "'run_name=lr${stages.stage1.optim.lr}'")
            owners[cfg.run_name] = combo


def split_flags(args: list[str]) -> tuple[list[str], list[str]]:
    """(Hydra's flags with their values, the overrides); an unknown flag or a missing value is one line."""
    flags, overrides, i = [], [], 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-"):
            overrides.append(arg)
            continue
        flag, given, value = arg.partition("=")
        if flag not in HYDRA_FLAGS:
            raise UserError(f"unknown flag {flag}; reproduce takes key=value overrides and Hydra's flags "
                            f"{', '.join(f for f in HYDRA_FLAGS if f.startswith('--'))} (`reproduce --help`)")
        flags.append(arg)
        takes = HYDRA_FLAGS[flag]
        if not given and (takes or takes is None and i < len(args) and args[i] in INFO_CHOICES):
            if i == len(args):
                raise UserError(f"{flag} needs a value" + (f": one of {', '.join(CFG_CHOICES)}"
                                                          if flag in ("--cfg", "-c") else ""))
            value = args[i]
            flags.append(value)
            i += 1
        if flag in ("--cfg", "-c") and value not in CFG_CHOICES:
            raise UserError(f"{flag} {value}: choose one of {', '.join(CFG_CHOICES)}")
    return flags, overrides


def run_hydra(command: Command, args: list[str]) -> None:
    """Sweeps and Hydra's flags: hydra.main composes, launches, and calls ``execute`` for each job. Every job of a
    sweep is checked first; otherwise the config is composed first, so that a misspelt key or a bad value is one
    line here rather than Hydra's report."""
    flags, overrides = split_flags(args)
    if any(flag in MULTIRUN for flag in flags):
        check_sweep(command, overrides)
    else:
        compose_config(command.config_name, overrides)

    def job(cfg: DictConfig) -> None:
        sys.argv = typed  # Lightning re-executes the command line as typed
        with exit_codes(inherited_handlers()):  # under submitit: its requeue handler
            typed_cfg = OmegaConf.to_object(cfg)
            command.check(typed_cfg, command)
            execute(command, typed_cfg)

    typed = sys.argv
    sys.argv = [sys.argv[0], *args]
    hydra.main(config_path=str(CONF_DIR), config_name=command.config_name, version_base="1.3")(job)()


@contextlib.contextmanager
def exit_codes(handlers: Any) -> Iterator[None]:
    """A user's error, a verdict that differs and a stop by signal as one line each and their exit codes (2, 3,
    130/143, whichever command it stopped); a signal is passed on to the handlers that were there before ours (a
    launcher's requeue). A closed pipe on stdout ends quietly."""
    try:
        yield
    except UserError as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        sys.exit(2)
    except Differs as exc:
        print(f"differs: {printable(exc)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (Interrupted, Stopped) as exc:
        print(f"stopped: {printable(exc)}", file=sys.stderr)
        pass_on(exc, handlers)
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # the reader went away (`reproduce --help | head`): no traceback at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except Exception as exc:  # a full disk or an unwritable place, also under a library's own exception: one line
        line = disk_error(exc)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    handlers = inherited_handlers()
    with stop_on_signals(), exit_codes(handlers):  # every command stops on SIGINT and SIGTERM alike
        if argv[:1] and argv[0] in HELP:
            print(usage())
            return
        if "--version" in argv:  # the package's (Hydra's own is `reproduce --hydra-help`'s first line)
            print(f"reproduce {__version__}")
            return
        command, args = split_command(argv)
        if any(a in HELP for a in args):
            print(command_help(command))
            return
        if any(a.startswith("-") for a in args):
            run_hydra(command, args)
            return
        if command.libraries and not any(a.lower() in ("verbose=true", "verbose=1") for a in args):
            silence_progress_bars()  # before the pre-flight, which may import them (their bars read the switches then)
        execute(command, load(command, args))


if __name__ == "__main__":
    main()
