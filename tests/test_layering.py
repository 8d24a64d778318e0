"""The package's shape, read from its imports: every module in a layer, no upward import, no import circle, and no
module over 450 lines. Imports inside functions count (a lazy import is still a dependency), and so does a function
named by its module (``Lazy("reproduce.recipe.plan", "plan")`` in the command table); imports under
``if TYPE_CHECKING:`` do not."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "reproduce"
MAX_LINES = 450
# Folders, from the top down: a module imports modules of its own folder's tier or of lower tiers. The domain folders
# (what the commands do) import each other only downward by LAYERS below. One exception: the config schema's default
# contamination sets come from the benchmark registry (evaluate.benchmarks, which imports only core).
FOLDERS = (
    ("entry", ("__main__", "cli")),
    ("commands", ("commands",)),  # the command table, the pre-flight, the recipe's steps, model scoring
    ("domain", ("recipe", "data", "train", "evaluate", "paper", "model")),
    ("config", ("config",)),  # the typed schema and its composition
    ("core", ("core", "")),  # utilities every folder may import: paths, files, errors, logs, results layout and records
)
FOLDER_EXCEPTIONS = {("config.schema", "evaluate.benchmarks")}
# Modules, from the top down. A module imports modules of its own layer or of lower ones; a prefix names a package.
LAYERS = (
    ("entry", ("__main__", "cli")),
    ("commands", ("commands.table", "commands.preflight", "commands.pipeline", "commands.data_steps",
                  "commands.train_step", "commands.eval_step")),
    ("engines", ("recipe.record", "recipe.compare", "recipe.publish", "recipe.plan", "commands.scoring", "paper.tables",
                 "paper.figures", "paper.published_tables", "paper.baselines", "paper.architectures", "paper.build",
                 "paper.benchmark_curves",
                 "train.stage", "evaluate.runner", "evaluate.inputs", "data.prepare", "data.scan", "data.shard_writer",
                 "data.prepared_set", "train.in_training_eval")),
    ("building blocks", ("commands.checks", "config.compose", "recipe.steps", "model.gpt2", "model.pretrained",
                         "core.meta", "paper.formats", "paper.reader", "paper.plotting", "train.checkpoint",
                         "train.progress", "train.model_card", "evaluate.harness", "evaluate.lm_eval_tasks",
                         "evaluate.suites", "data.sources", "data.eval_items", "data.contamination", "data.workers",
                         "data.sequences", "train.trackers", "train.watch")),
    ("schemas", ("config.schema",)),
    ("leaves", ("core.errors", "core.paths", "core.io", "core.logs", "core.perf", "core.arithmetic", "core.layout",
                "core.locks", "core.checksums", "core.records", "model.attention", "evaluate.benchmarks",
                "evaluate.penlp", "evaluate.generate", "evaluate.perplexity", "train.distributed", "data.records",
                "data.split", "data.parallel", "data.tokenizer", "data.manifest", "data.shards", "data.corpus",
                "core.environment", "")),
)


def _modules() -> dict[str, Path]:
    """Module name (without the ``reproduce.`` prefix; the package itself is "") -> file, task folders aside."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "tasks" in path.relative_to(PACKAGE).parts:
            continue
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``path`` imports, anywhere in the file but under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in
                   ast.unparse(node.test) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [_short(a.name) for a in node.names]
        elif isinstance(node, ast.Call) and ast.unparse(node.func) == "Lazy" and isinstance(node.args[0], ast.Constant):
            names = [_short(node.args[0].value)]  # a function the command table imports when it is called
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from reproduce.data import workers" imports a module, "from reproduce.core.io import write_json" its
            # module
            names = [_short(f"{node.module}.{a.name}") if _short(f"{node.module}.{a.name}") in modules
                     else _short(node.module) for a in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def _short(name: str) -> str | None:
    """A module's name inside the package ("" for the package itself), or None for another package."""
    if name != "reproduce" and not name.startswith("reproduce."):
        return None
    return name.removeprefix("reproduce").removeprefix(".")


def _layer(module: str) -> int:
    """The index of the module's layer (0 is the top); the longest matching prefix decides."""
    matches = [(len(prefix), i) for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or prefix and module.startswith(prefix + ".")]
    assert matches, f"reproduce.{module} is in no layer of tests/test_layering.py: add it where it belongs"
    return max(matches)[1]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, if there is any (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_every_module_has_a_layer_and_imports_only_its_own_or_lower_layers() -> None:
    upward = [f"reproduce.{a} ({LAYERS[_layer(a)][0]}) imports reproduce.{b} ({LAYERS[_layer(b)][0]})"
              for a, targets in _graph().items() for b in targets if _layer(b) < _layer(a)]
    assert upward == []


def _tier(module: str) -> int:
    folder = module.split(".")[0] if "." in module else module
    matches = [i for i, (_, folders) in enumerate(FOLDERS) if folder in folders]
    assert matches, f"reproduce.{module}: its folder is in no tier of FOLDERS in tests/test_layering.py"
    return matches[0]


def test_every_folder_imports_only_its_own_or_lower_tiers() -> None:
    upward = [f"reproduce.{a} ({FOLDERS[_tier(a)][0]}) imports reproduce.{b} ({FOLDERS[_tier(b)][0]})"
              for a, targets in _graph().items() for b in targets
              if _tier(b) < _tier(a) and (a, b) not in FOLDER_EXCEPTIONS]
    assert upward == []


def test_no_module_sits_beside_the_folders_but_the_entry_points() -> None:
    assert sorted(name for name in _modules() if "." not in name) == ["", "__main__", "cli"] + sorted(
        name for _, folders in FOLDERS[1:] for name in folders if name and "." not in name)


def test_no_import_circle() -> None:
    assert _cycle(_graph()) is None


def test_the_command_table_names_functions_that_exist_and_its_imports_are_seen() -> None:
    from reproduce.commands.table import COMMANDS, Lazy

    named = {ref for c in COMMANDS.values() for ref in (c.run, c.scores) if isinstance(ref, Lazy)}
    assert all(callable(ref.resolve()) for ref in named)
    assert {_short(ref.module) for ref in named} <= _graph()["commands.table"]


def test_the_checks_find_a_circle_and_an_upward_import() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert _layer("config.schema") > _layer("cli") and _layer("data.records") == len(LAYERS) - 1


def test_no_module_is_over_450_lines() -> None:
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
