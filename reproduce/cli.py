"""Console entry point: ``reproduce [paper] [hydra overrides...]``.

``reproduce`` runs the whole recipe (conf/reproduce.yaml); ``reproduce paper`` regenerates paper/ from
results/ (conf/paper.yaml). Anything after the command is a Hydra override, e.g. ``model=rugpt3_small``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

from reproduce.errors import UserError
from reproduce.paths import CONF_DIR, project_path


def _reproduce(cfg: DictConfig) -> None:
    from reproduce.pipeline import run  # heavy imports only once the config is valid

    run(cfg)


def _paper(cfg: DictConfig) -> None:
    from reproduce.paper.build import build_paper

    written = build_paper(project_path(cfg.results_dir), project_path(cfg.paper_dir))
    print(f"[paper] wrote {len(written)} files under {cfg.paper_dir}")


COMMANDS: dict[str, tuple[str, Callable[[DictConfig], None]]] = {
    "reproduce": ("reproduce", _reproduce),
    "paper": ("paper", _paper),
}


def main() -> None:
    args = sys.argv[1:]
    command = args.pop(0) if args and args[0] in COMMANDS else "reproduce"
    config_name, task = COMMANDS[command]

    def guarded(cfg: DictConfig) -> None:
        try:
            task(cfg)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    sys.argv = [f"{Path(sys.argv[0]).name} {command}", *args]
    hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(guarded)()


if __name__ == "__main__":
    main()
