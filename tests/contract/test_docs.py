"""The README fits on a screen and the docs hold together.

GIVEN README.md and the pages under docs/, THEN the README stays short and names the two
commands, its overview diagram names real states in their real order, every `make` target they
name exists, every relative link (and its anchor) resolves, and every repository path they name
exists. Other contract tests hold the facts each page states (test_deploy.py: docs/deploy.md;
test_asl.py: docs/state-machine.md; tests/statemachine/test_events_out.py: docs/events-out.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
ASL = ROOT / "statemachines" / "certificate_lifecycle.asl.json"
HOW_IT_WORKS = ROOT / "docs" / "how-it-works.md"
OPERATIONS = ROOT / "docs" / "operations.md"
MAKEFILE = ROOT / "Makefile"
README_MAX_LINES = 250

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
# Overview diagram: `id["State Name"]` (a task), `id{"Choice?"}` (a choice) or `id(("outside"))`.
NODE = re.compile(r'(\w+)(\(\(|\[|\{)"([^"]+)"(?:\)\)|\]|\})')
EDGE = re.compile(r'^\s*(\w+)\s*-->(?:\|"[^"]*"\|)?\s*(\w+)\s*$')
STATE_SHAPES = {"[", "{"}
# Repository paths the docs may name in backticks (placeholders such as <name> are skipped).
REPO_PATH = re.compile(
    r"^(?:(?:src|functions|tests|ssm|bench|config|events|statemachines|docs|templates)/[\w./-]*"
    r"|template\.yaml|member\.yaml|samconfig\.toml|pyproject\.toml|Makefile|\.ci/run|\.checkov\.yaml)$"
)


def text_of(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def prose(markdown: str) -> str:
    """The Markdown without its fenced code blocks (a shell block's `# comment` is no heading)."""
    return FENCE.sub("", markdown)


def code_blocks(markdown: str) -> list[str]:
    return FENCE.findall(markdown)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} (.+)$", prose(markdown), flags=re.MULTILINE):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> Iterator[tuple[str, Path, str]]:
    """(link as written, the file it points to, its anchor or "") for each relative link."""
    for target in LINK.findall(prose(text_of(path))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        yield target, resolved, anchor


def asl_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from asl_states(processor["States"])


def successors(state: dict[str, Any]) -> set[str]:
    found = {c["Next"] for c in [*state.get("Choices", []), *state.get("Catch", [])]}
    found |= {state[key] for key in ("Next", "Default") if key in state}
    processor = state.get("ItemProcessor") or state.get("Iterator")
    if processor:
        found.add(processor["StartAt"])
    return found


def reachable(graph: dict[str, set[str]], source: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(source, ()))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return json.loads(text_of(ASL))


@pytest.fixture(scope="module")
def overview() -> tuple[dict[str, tuple[str, str]], list[tuple[str, str]]]:
    """The README's Mermaid overview: node id -> (shape, label), and its edges."""
    blocks = re.findall(r"^```mermaid\n(.*?)^```", text_of(README), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "the README has one overview diagram (the full graph is in docs/)"
    lines = blocks[0].splitlines()
    assert lines[0].startswith("flowchart ")
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str]] = []
    for line in lines[1:]:
        for node_id, shape, label in NODE.findall(line):
            assert nodes.get(node_id, (shape, label)) == (shape, label), f"{node_id} drawn twice"
            nodes[node_id] = (shape, label)
        bare = NODE.sub(lambda found: found[1], line)
        if not bare.strip():
            continue
        edge = EDGE.match(bare)
        assert edge, f"a Mermaid line this test does not understand: {line!r}"
        edges.append((edge[1], edge[2]))
    return nodes, edges


# --- the README fits on a screen -------------------------------------------------------------


def test_the_readme_stays_under_250_lines():
    lines = text_of(README).count("\n")

    assert lines < README_MAX_LINES, f"README.md has {lines} lines: move detail into docs/"


def test_the_readme_names_make_demo_and_make_test_as_the_two_commands():
    section = text_of(README).split("\n## Try it locally\n", 1)[1].split("\n## ", 1)[0]
    first_block = code_blocks(section)[0]
    commands = [line.split("#", 1)[0].strip() for line in first_block.splitlines()]

    assert [c for c in commands if c] == ["make demo", "make test"]


def test_the_readme_links_every_page_under_docs():
    linked = {resolved for _, resolved, _ in relative_links(README)}
    pages = {path.resolve() for path in DOCS[1:] if path.parent.name != "adr"}

    assert not pages - linked, f"pages the README does not link: {sorted(pages - linked)}"


# --- the overview diagram --------------------------------------------------------------------


def test_the_overview_diagram_is_short_and_names_real_states(overview, asl):
    nodes, _ = overview
    names = {name for name, _ in asl_states(asl["States"])}
    states = {label for shape, label in nodes.values() if shape in STATE_SHAPES}
    outside = {label for shape, label in nodes.values() if shape not in STATE_SHAPES}

    assert len(nodes) <= 15, "an overview: the full graph lives in docs/state-machine.md"
    assert len(states) >= 6
    assert not states - names, f"boxes that are not states of the ASL: {states - names}"
    assert not outside & names, f"states drawn as outside things (use a box): {outside & names}"


def test_the_overview_diagram_follows_the_asls_order(overview, asl):
    nodes, edges = overview
    graph = {name: successors(state) for name, state in asl_states(asl["States"])}

    assert edges
    for source, target in edges:
        (source_shape, source_label), (target_shape, target_label) = nodes[source], nodes[target]
        if target_shape not in STATE_SHAPES:
            continue
        if source_shape not in STATE_SHAPES:
            assert target_label == asl["StartAt"], f"outside into {target_label}, not StartAt"
        else:
            assert target_label in reachable(graph, source_label), (
                f"the ASL never goes from {source_label!r} to {target_label!r}"
            )


# --- which function serves which state ------------------------------------------------------


def documented_functions() -> dict[str, set[str]]:
    """Function logical id -> the states docs/how-it-works.md says it serves."""
    text = text_of(HOW_IT_WORKS).split("<!-- functions-and-states -->\n", 1)[1]
    rows: dict[str, set[str]] = {}
    for line in text.splitlines()[2:]:
        if not line.startswith("|"):
            break
        function, states, _ = (cell.strip() for cell in line.strip("|").split("|"))
        (logical_id,) = re.findall(r"\(`(\w+Function)`\)", function)
        rows[logical_id] = set(re.findall(r"\*([^*]+)\*", states))
    return rows


def test_the_functions_table_names_the_states_each_function_serves(asl):
    served: dict[str, set[str]] = {}
    for name, state in asl_states(asl["States"]):
        function = state.get("Parameters", {}).get("FunctionName", "")
        if found := re.fullmatch(r"\$\{(\w+Function)Arn\}", str(function)):
            served.setdefault(found[1], set()).add(name)
    documented = documented_functions()

    functions = {f.parent.name for f in (ROOT / "functions").glob("*/app.py")}
    assert len(documented) == len(functions), "one row per functions/<name>/"
    for logical_id, states in served.items():
        assert documented.get(logical_id) == states, logical_id
    for logical_id, states in documented.items():
        assert states == served.get(logical_id, set()), logical_id


def alarms(translated: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every CloudWatch alarm's properties, nested templates inlined (so a queue dimension is
    the parent's `Fn::GetAtt`, not the child's parameter)."""
    for resource in translated["Resources"].values():
        if resource.get("Type") == "AWS::CloudWatch::Alarm":
            yield resource["Properties"]


def test_the_runbook_names_every_alarms_metric_and_queue(translated: dict[str, Any]):
    runbook = text_of(OPERATIONS).split("\n## Alarms", 1)[1].split("\n## ", 1)[0]
    found = list(alarms(translated))
    queues_checked = 0

    assert len(found) > 10
    for alarm in found:
        assert f"`{alarm['MetricName']}`" in runbook, alarm["MetricName"]
        for dimension in alarm.get("Dimensions", []):
            value = dimension["Value"]
            if (
                dimension["Name"] == "QueueName"
                and isinstance(value, dict)
                and "Fn::GetAtt" in value
            ):
                queue = value["Fn::GetAtt"][0]
                queues_checked += 1
                assert f"`{queue}`" in runbook, f"the runbook does not name {queue}"
    assert queues_checked >= 3, "every dead-letter queue alarm names its queue"


# --- every name the docs use is real ---------------------------------------------------------


def test_every_make_target_the_docs_name_exists():
    targets = set(re.findall(r"^([\w-]+):", text_of(MAKEFILE), flags=re.MULTILINE))
    named: set[tuple[str, str]] = set()
    for path in DOCS:
        markdown = text_of(path)
        spans = INLINE_CODE.findall(prose(markdown))
        lines = [line for block in code_blocks(markdown) for line in block.splitlines()]
        for command in [*spans, *lines]:
            named |= {(path.name, t) for t in re.findall(r"^\s*make ([\w-]+)", command)}

    assert ("README.md", "demo") in named
    assert ("README.md", "test") in named
    missing = sorted((page, t) for page, t in named if t not in targets)
    assert not missing, f"make targets the Makefile lacks: {missing}"


def test_every_relative_link_points_to_an_existing_file_and_anchor():
    broken = []
    for path in DOCS:
        for target, resolved, anchor in relative_links(path):
            if not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(text_of(resolved)):
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")

    assert not broken, "\n".join(broken)


def test_every_repository_path_the_docs_name_exists():
    missing = []
    for path in DOCS:
        for span in INLINE_CODE.findall(prose(text_of(path))):
            placeholder = re.search(r"[<>{}*…]", span)
            if REPO_PATH.match(span) and not placeholder and not (ROOT / span).exists():
                missing.append(f"{path.relative_to(ROOT)}: `{span}`")

    assert not missing, "\n".join(missing)
