"""The README and docs/ cannot rot silently: Hydra composes every `python -m betavae.*` command they show (every
swept value of a multirun), every `make` target and `pip` extra they name exists, and every file and section they
link or name exists."""

import importlib
import re
import shlex
from shutil import which

import pytest
from hydra import compose, initialize_config_dir

from betavae.base.cli import quote_path_arguments
from betavae.runs.plan import expand
from tests.helpers import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CONFIGS = {"betavae.train": "train", "betavae.evaluate": "evaluate", "betavae.summarize": "summarize",
           "betavae.data": "find_data", "betavae.export": "export"}  # fmt: skip
REPO_PATH = re.compile(
    r"(?<![\w/.~$-])(?:betavae|callbacks|conf|tests|benchmarks|scripts|docs|hydra_plugins|\.ci)/[\w./-]*"
)


def shell_commands(path):
    """The commands of a document's ```bash blocks: continuation lines joined, comments dropped, split as the
    shell splits them."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if words := shlex.split(line, comments=True):
                found.append(words)
    return found


COMMANDS = [(path.relative_to(REPO), words) for path in DOCS for words in shell_commands(path)]


def entry_point(module):
    """What `python -m <module>` runs: the module, or a package's __main__."""
    imported = importlib.import_module(module)
    return importlib.import_module(f"{module}.__main__") if hasattr(imported, "__path__") else imported


def covering(jobs):
    """The jobs of a multirun that each bring an override value no earlier one had: every swept value composed
    once, not every product of them (a 6 × 6 grid composes 11 jobs, not 36)."""
    seen = set()
    for job in jobs:
        if not seen >= set(job):
            seen |= set(job)
            yield job


def slug(heading):
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    """The anchors of a document's headings."""
    return {slug(h) for h in re.findall(r"^#+ (.+)$", path.read_text(), flags=re.M)}


def test_the_docs_show_commands_of_every_kind_checked_here():
    programs = {words[words.index("-m") + 1] for _, words in COMMANDS if "-m" in words}
    assert set(CONFIGS) - {"betavae.data"} <= programs
    assert any(w[0] == "make" for _, w in COMMANDS)


@pytest.mark.slow  # about 15 s in all: each command composed as Hydra composes it
@pytest.mark.parametrize(("doc", "words"), COMMANDS, ids=[shlex.join(w)[:80] for _, w in COMMANDS])
def test_every_documented_command_composes_or_names_what_exists(doc, words):
    if "python" in words and words[words.index("python") + 1] == "-m":  # alone, or after srun
        module, *args = words[words.index("python") + 2 :]
        overrides = [a for a in args if a not in ("-m", "--multirun")]
        overrides = quote_path_arguments(["", *overrides])[1:]
        with initialize_config_dir(str(REPO / "betavae" / "conf"), version_base="1.3"):
            for job in covering(expand(overrides)):
                compose(CONFIGS[module], overrides=job, return_hydra_config=True)
    elif words[0] in (".", "source"):  # the project's environment, which the Makefile makes
        assert words[1:] == [".venv/bin/activate"], words
        assert re.search(r"^VENV \?= \.venv$", (REPO / "Makefile").read_text(), flags=re.M)
    elif words[0] == "make":
        assert re.search(rf"^{re.escape(words[1])}:", (REPO / "Makefile").read_text(), flags=re.M), words
    elif words[:2] == ["pip", "install"]:
        section = (REPO / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1].split("\n[")[0]
        extras = re.findall(r"^([\w-]+) = ", section, flags=re.M)
        assert all(e in extras for w in words if "[" in w for e in w.split("[")[1].rstrip("]").split(",")), words
    else:
        assert which(words[0]), f"{doc}: {words[0]} is not a program here"


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_every_link_and_named_file_of_a_document_exists(doc):
    text = doc.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        linked = (doc.parent / file).resolve() if file else doc
        assert linked.exists(), f"{doc.name}: link to missing {target}"
        assert not anchor or anchor in anchors(linked), f"{doc.name}: no section #{anchor} in {linked.name}"
    for code in re.findall(r"`([^`\n]+)`", text):
        for path in REPO_PATH.findall(code):
            assert (REPO / path.rstrip(".")).exists(), f"{doc.name}: {path} does not exist"


def test_every_row_of_the_reliability_page_names_tests_that_exist():
    tests = {path.stem: set(re.findall(r"^def (test_\w+)", path.read_text(), flags=re.M))
             for path in (REPO / "tests").glob("test_*.py")}  # fmt: skip
    rows = [line for line in (REPO / "docs" / "reliability.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith(("| fault", "| ---"))]  # fmt: skip
    assert len(rows) > 30
    for row in rows:
        shown = row.rstrip(" |").rsplit(" | ", 1)[1]
        for part in shown.split(";"):
            file, _, names = part.strip().partition(":")
            assert file in tests, row
            assert all(name.strip() in tests[file] for name in names.split(",") if name.strip()), row
