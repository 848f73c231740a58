"""The rules' conda environments (envs/*.yaml) provide everything their jobs import.

No conda is needed: the rules are read from rules/*.smk, the imports of every workflow script
(and of the ``scalecnn`` command line for shell rules) are followed with ``ast`` through the
package's modules, and the third-party ones are looked up in the rule's env file.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "scalecnn"
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
# Where Snakemake puts its copy of an env file before `conda env create --file <copy>`
# (<workdir>/.snakemake/conda/<hash>.yaml); conda runs pip from that folder, so relative pip
# paths are relative to it, not to envs/. See docs/cluster.md, "Conda environments".
CONDA_ENV_COPY_DIR = REPO / ".snakemake" / "conda"

# Import name -> conda-forge (or PyPI) package name, where they differ.
PACKAGE_OF_IMPORT = {
    "torch": "pytorch",
    "yaml": "pyyaml",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "cv2": "opencv",
    "resvg_py": "resvg-py",
    "fontawesomefree": "fontawesomefree",
    "kornia_rs": "kornia-rs",
}
# PyPI distribution name -> conda-forge name, for the package's own requirements.
CONDA_NAME_OF_DIST = {"torch": "pytorch"}
# Attribute names whose use makes a third-party package import an optional dependency
# (pandas' Styler, behind DataFrame.to_latex and Styler.to_latex, imports jinja2).
OPTIONAL_IMPORTS = {"to_latex": "jinja2"}
# Envs of rules that build tables and figures from the runs' files: no PyTorch, no kornia
# (tests/test_torch_free.py builds them all with torch unimportable).
TORCH_FREE_ENVS = ("plots.yaml",)
TRAINING_PACKAGES = ("pytorch", "kornia")
DIRECTIVES = ("conda", "script", "shell", "run", "wrapper", "notebook", "cwl", "template_engine")


# --- rules --------------------------------------------------------------------------------
@dataclass
class Rule:
    name: str
    file: Path
    directives: dict[str, str]  # directive -> its source text (the lines below it)

    def literal(self, key):
        """The directive's value as a Python literal (adjacent strings are joined)."""
        text = self.directives[key]
        try:
            return ast.literal_eval(f"(\n{text}\n)")
        except (ValueError, SyntaxError):
            pytest.fail(f"rule {self.name} ({self.file.name}): {key} is not a literal: {text}")

    def path(self, key):
        return (self.file.parent / self.literal(key)).resolve()


def parse_rules(files=RULE_FILES):
    """Rules and checkpoints of the workflow with their directives' source text."""
    rules = []
    for file in files:
        lines = file.read_text().splitlines()
        i = 0
        while i < len(lines):
            m = re.match(r"(?:rule|checkpoint)\s+(\w+)\s*:", lines[i])
            i += 1
            if not m:
                continue
            rule = Rule(m.group(1), file, {})
            current = None
            while i < len(lines) and (not lines[i].strip() or lines[i][0] in " \t#"):
                line = lines[i]
                d = re.match(r"    (\w+):\s*(.*)$", line)
                if d and not line.startswith("     "):
                    current = d.group(1)
                    rule.directives[current] = d.group(2)
                elif current is not None:
                    rule.directives[current] += "\n" + line
                i += 1
            rules.append(rule)
    return rules


RULES = parse_rules()
JOB_RULES = [r for r in RULES if any(k in r.directives for k in DIRECTIVES if k != "conda")]


# --- imports ------------------------------------------------------------------------------
# Imports at module level run when a module is imported: their packages are always needed.
# Imports inside a function or class run only when it is used: they count when the job can
# reach it, by name, from its script (or its command's handler) through the package's code.
def _module_file(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _optional_import(node: ast.Try) -> bool:
    """``try: import x`` whose ``except ImportError`` goes on without it (no re-raise)."""
    handlers = [
        h
        for h in node.handlers
        if re.search(r"ImportError|ModuleNotFoundError", ast.unparse(h.type) if h.type else "")
    ]
    return bool(handlers) and not any(
        isinstance(n, ast.Raise) for h in handlers for n in ast.walk(h)
    )


@dataclass
class Code:
    """Imports and referenced names of a piece of code (a module's top level, a def)."""

    imports: set[str]  # absolute module names; optional ones (see _optional_import) left out
    names: set[str]  # names and attribute names it uses


@dataclass
class Module:
    name: str
    top: Code  # module-level code
    units: dict[str, Code]  # top-level functions and classes
    roots: set[str]  # decorated top-level defs (registered, so callable from anywhere)


def _scan(nodes, package: str) -> Code:
    code = Code(set(), set())

    def visit(node):
        if isinstance(node, ast.Try) and _optional_import(node):
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child)
            return
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            code.imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module
            code.imports.add(base)
            for alias in node.names:
                if _module_file(f"{base}.{alias.name}"):  # `from pkg import submodule`
                    code.imports.add(f"{base}.{alias.name}")
        elif isinstance(node, ast.Name):
            code.names.add(node.id)
        elif isinstance(node, ast.Attribute):
            code.names.add(node.attr)
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("__import__", "importlib.import_module", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            code.imports.add(node.args[0].value)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for node in nodes:
        visit(node)
    return code


def parse_module(path: Path, name: str = "") -> Module:
    """``name``: the dotted module name (empty for a workflow script)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    units = {n.name: _scan([n], package) for n in tree.body if isinstance(n, defs)}
    top = _scan([n for n in tree.body if not isinstance(n, defs)], package)
    for n in tree.body:  # decorators and default values run at import time
        if isinstance(n, defs):
            extra = _scan(n.decorator_list, package)
            if not isinstance(n, ast.ClassDef):
                extra_args = _scan(
                    [d for d in (*n.args.defaults, *n.args.kw_defaults) if d], package
                )
                extra.names |= extra_args.names
            top.names |= extra.names
    roots = {n.name for n in tree.body if isinstance(n, defs) and n.decorator_list}
    return Module(name, top, units, roots)


def _third_party(module: str) -> str | None:
    top = module.split(".")[0]
    if top == PACKAGE or top in sys.stdlib_module_names or top == "__future__":
        return None
    return top


def third_party_imports(
    path: Path, module: str = "", roots: set[str] | None = None, excluded=frozenset()
) -> dict[str, str]:
    """Top-level third-party names the code of ``path`` needs, each with where it is imported.

    Every ``scalecnn`` module it imports (anywhere; parent packages included) is loaded, so
    their module-level imports count. A def's own imports count when it is reachable: used by
    the module-level code of a loaded module (``path``'s included), decorated, named in
    ``roots``, or used by a reachable def. ``excluded``: (module, def) pairs never reached.
    """
    modules: dict[str, Module] = {}
    start = parse_module(path, module)
    modules[module] = start
    todo = [start]
    while todo:  # the package modules that get loaded
        mod = todo.pop()
        for code in [mod.top, *mod.units.values()]:
            for imported in code.imports:
                parts = imported.split(".")
                for n in range(1, len(parts) + 1):
                    sub = ".".join(parts[:n])
                    sub_file = _module_file(sub) if parts[0] == PACKAGE else None
                    if sub_file and sub not in modules:
                        modules[sub] = parse_module(sub_file, sub)
                        todo.append(modules[sub])
    needed: dict[str, str] = {}
    label = module or str(path.relative_to(REPO))

    def optional(code: Code, where: str) -> None:
        for attr, package in OPTIONAL_IMPORTS.items():
            if attr in code.names:
                needed.setdefault(package, f"{where} (.{attr})")

    for mod in modules.values():
        for imported in sorted(mod.top.imports):
            if top := _third_party(imported):
                needed.setdefault(top, mod.name or label)
        optional(mod.top, mod.name or label)
    names = set(roots or ())
    for mod in modules.values():
        names |= mod.top.names | mod.roots
    reached: set[tuple[str, str]] = set()
    pending = list(names)
    while pending:  # defs reachable by name
        name = pending.pop()
        for mod in modules.values():
            unit = mod.units.get(name)
            if unit is None or (mod.name, name) in reached or (mod.name, name) in excluded:
                continue
            reached.add((mod.name, name))
            pending.extend(unit.names - names)
            names |= unit.names
            for imported in sorted(unit.imports):
                if top := _third_party(imported):
                    needed.setdefault(top, f"{mod.name or label}.{name}")
            optional(unit, f"{mod.name or label}.{name}")
    return needed


def shell_command(rule: Rule) -> list[str] | None:
    """The ``scalecnn`` sub-command words of a shell rule (None: it does not run scalecnn)."""
    m = re.search(
        rf"(?:^|[\s;&|(])(?:python -m )?{PACKAGE}\s+((?:[a-z][\w-]*\s*)+)", rule.literal("shell")
    )
    return m.group(1).split() if m else None


def cli_handlers() -> dict[tuple[str, ...], tuple[str, str]]:
    """Sub-command words -> (module, function) of its handler (argparse ``func`` default)."""
    import argparse

    from scalecnn.cli import build_parser

    handlers = {}

    def walk(parser, words):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            func = parser.get_default("func")
            func = getattr(func, "func", func)  # functools.partial
            handlers[tuple(words)] = (func.__module__, func.__name__)
        for action in subs:
            for word, sub in action.choices.items():
                walk(sub, [*words, word])

    walk(build_parser(), [])
    return handlers


def job_imports(rule: Rule) -> dict[str, str]:
    """Third-party imports the rule's job needs: its script's, or its scalecnn command's."""
    if "script" in rule.directives:
        script = rule.path("script")
        assert script.suffix == ".py", f"rule {rule.name}: only Python scripts are checked"
        return third_party_imports(script)
    if "shell" in rule.directives:
        words = shell_command(rule)
        if words is None:
            return {}
        handlers = cli_handlers()
        match = [k for k in handlers if tuple(words[: len(k)]) == k]
        assert match, f"rule {rule.name}: unknown command scalecnn {' '.join(words)}"
        handler = handlers[max(match, key=len)]
        others = {h for h in handlers.values() if h != handler}
        cli = f"{PACKAGE}.cli"
        return third_party_imports(_module_file(cli), cli, roots={handler[1]}, excluded=others)
    pytest.fail(f"rule {rule.name}: unsupported job directive {list(rule.directives)}")


# --- env files ------------------------------------------------------------------------------
@dataclass
class Env:
    channels: list[str]
    conda: dict[str, str]  # canonical name -> spec
    pip: dict[str, str]  # canonical name -> spec
    pip_editables: list[str]
    pip_other: list[str]

    @property
    def packages(self) -> set[str]:
        return set(self.conda) | set(self.pip)


def read_env(path: Path) -> Env:
    data = yaml.safe_load(path.read_text())
    conda, pip, editables, other = {}, {}, [], []
    for dep in data.get("dependencies", []):
        if isinstance(dep, dict):
            for spec in dep.get("pip", []):
                spec = str(spec).strip()
                if spec.startswith(("-e ", "--editable ")):
                    editables.append(spec.split(None, 1)[1])
                elif spec.startswith("-"):
                    other.append(spec)
                else:
                    pip[canonicalize_name(Requirement(spec).name)] = spec
        else:
            name = re.split(r"[=<>!~ ]", str(dep).split("::")[-1], maxsplit=1)[0]
            conda[canonicalize_name(name)] = str(dep)
    return Env(list(data.get("channels", [])), conda, pip, editables, other)


def required_package(import_name: str) -> str:
    return canonicalize_name(PACKAGE_OF_IMPORT.get(import_name, import_name))


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def base_requirements() -> list[Requirement]:
    """What `pip install scalecnn` installs (no extra)."""
    return [Requirement(r) for r in _pyproject()["project"]["dependencies"]]


def package_requirements() -> list[Requirement]:
    """The base requirements and those of the extra `train` (PyTorch, kornia): what the
    rules' envs must pin between them."""
    train = _pyproject()["project"]["optional-dependencies"]["train"]
    return base_requirements() + [Requirement(r) for r in train]


# --- tests -----------------------------------------------------------------------------------
def test_rules_and_envs_are_found():
    assert {"train", "prepare_data", "select_lr"} <= {r.name for r in JOB_RULES}
    assert {p.name for p in ENV_FILES} >= {"data.yaml", "train.yaml", "plots.yaml"}


@pytest.mark.parametrize("rule", JOB_RULES, ids=lambda r: r.name)
def test_every_job_rule_has_an_env_file(rule):
    assert "conda" in rule.directives, f"rule {rule.name} ({rule.file.name}) has no conda:"
    env = rule.path("conda")
    assert env.parent == REPO / "envs" and env.is_file(), f"rule {rule.name}: {env}"


@pytest.mark.parametrize(
    "rule", [r for r in JOB_RULES if "conda" in r.directives], ids=lambda r: r.name
)
def test_env_provides_every_import_of_the_job(rule):
    env_path = rule.path("conda")
    env = read_env(env_path)
    missing = {
        f"{name} (package {required_package(name)}, imported by {where})"
        for name, where in job_imports(rule).items()
        if required_package(name) not in env.packages
    }
    assert not missing, f"rule {rule.name}: {env_path.name} lacks {sorted(missing)}"
    uses_package = "script" in rule.directives or (
        "shell" in rule.directives and shell_command(rule) is not None
    )
    if uses_package:
        assert env.pip_editables, f"rule {rule.name}: {env_path.name} does not install {PACKAGE}"


def test_every_script_is_used_by_a_rule():
    used = {r.path("script") for r in JOB_RULES if "script" in r.directives}
    scripts = set((REPO / "workflow" / "scripts").glob("*.py"))
    assert scripts <= used, f"scripts no rule runs (not checked): {sorted(scripts - used)}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_is_pinned_conda_forge_only(path):
    env = read_env(path)
    assert env.channels == ["conda-forge", "nodefaults"], env.channels
    for spec in env.conda.values():
        assert re.fullmatch(r"[\w.-]+=={0,1}[\w.]+", spec.replace(" ", "")), (
            f"{path.name}: conda dependency {spec!r} is not pinned to one version"
        )
        assert "::" not in spec, f"{path.name}: {spec!r} names another channel"
    for spec in env.pip.values():
        assert re.fullmatch(r"[\w.-]+==[\w.]+", spec.replace(" ", "")), (
            f"{path.name}: pip dependency {spec!r} is not pinned to one version"
        )
    # conda writes the pip list to a requirements file: only its options are valid there
    # (--no-deps, for one, is not, and makes `conda env create` fail).
    assert not env.pip_other, f"{path.name}: options pip does not accept there: {env.pip_other}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_installs_this_repository_and_satisfies_its_requirements(path):
    """The editable install of scalecnn: its path resolves, from the env file's copy in
    <repo>/.snakemake/conda/, to this repository; and the env's pinned versions satisfy the
    package's requirements, so that pip installs nothing but scalecnn itself. A torch-free
    env (TORCH_FREE_ENVS) leaves out PyTorch and kornia, and only them."""
    env = read_env(path)
    assert len(env.pip_editables) == 1, f"{path.name}: {env.pip_editables}"
    target = (CONDA_ENV_COPY_DIR / env.pip_editables[0]).resolve()
    assert target == REPO, f"{path.name}: -e {env.pip_editables[0]} resolves to {target}"
    assert 'name = "scalecnn"' in (target / "pyproject.toml").read_text()
    python = env.conda.get("python", "")
    assert python, f"{path.name}: no python"
    left_out = set(TRAINING_PACKAGES) if path.name in TORCH_FREE_ENVS else set()
    for req in package_requirements():
        name = canonicalize_name(CONDA_NAME_OF_DIST.get(req.name, req.name))
        spec = env.conda.get(name) or env.pip.get(name)
        if name in left_out:
            assert not spec, f"{path.name}: installs {spec}, but its rules need no {name}"
            continue
        assert spec, f"{path.name}: lacks {name} (a requirement of {PACKAGE}: {req})"
        version = re.split(r"==?", spec.replace(" ", ""), maxsplit=1)[1]
        assert req.specifier.contains(version, prereleases=True), (
            f"{path.name}: {spec} does not satisfy {PACKAGE}'s requirement {req}"
        )


def test_train_and_plots_envs_differ_in_pytorch():
    """The training env installs PyTorch and kornia; the figure and table env installs
    neither (and pandas' Styler needs jinja2 there)."""
    train, plots = read_env(REPO / "envs" / "train.yaml"), read_env(REPO / "envs" / "plots.yaml")
    assert set(TRAINING_PACKAGES) <= train.packages
    assert not set(TRAINING_PACKAGES) & plots.packages
    assert "jinja2" in plots.packages
    assert train.packages != plots.packages


def test_pip_adds_no_pytorch_to_the_torch_free_envs():
    """PyTorch and kornia are in the extra `train`, not in the base requirements, so the
    editable install of scalecnn into a torch-free env (envs/plots.yaml) downloads neither."""
    base = {canonicalize_name(r.name) for r in base_requirements()}
    training = {canonicalize_name(d) for d, c in CONDA_NAME_OF_DIST.items()} | {"kornia"}
    assert not base & training, f"base requirements of {PACKAGE}: {sorted(base & training)}"


def test_import_analysis_follows_the_package():
    """Sanity check of the analysis itself: the command line reaches torch through the
    package, a script reaches pandas through scalecnn.aggregate, and Table 2 reaches jinja2
    through pandas' Styler; the table and figure scripts reach no torch."""
    cli = third_party_imports(_module_file(f"{PACKAGE}.cli"), f"{PACKAGE}.cli")
    assert {"torch", "numpy"} <= set(cli)
    scripts = REPO / "workflow" / "scripts"
    aggregate = third_party_imports(scripts / "aggregate.py")
    assert "pandas" in aggregate
    assert "jinja2" in third_party_imports(scripts / "plot_table2.py")
    for script in ("aggregate", "plot_figure", "plot_indices", "plot_table2", "plot_compare"):
        imports = third_party_imports(scripts / f"{script}.py")
        assert not {"torch", "kornia"} & set(imports), (script, imports)
