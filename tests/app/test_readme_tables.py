"""The README's tables of choices list what the core's and the loaders' tables allow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bpexp.config import group_tables
from bpexp.core.constraints import Options
from bpexp.data import DATASET_OPTIONS, MNIST_SOURCES
from tests.helpers import compose_cfg

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
#: a list of choices as the README writes them: `a`, `b`, or `c` / `a` or `b`
LISTED = re.compile(r"`[\w.]+`(?:,? (?:or )?`[\w.]+`)+")


def table_rows(header: str) -> dict[str, list[str]]:
    """The rows of the README table whose header line is ``header``, by first cell."""
    lines = README.splitlines()
    start = lines.index(header) + 2
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def listed(text: str) -> list[str]:
    """The first list of backticked choices in ``text``."""
    match = LISTED.search(text)
    assert match, f"no list of choices in {text!r}"
    return re.findall(r"`([\w.]+)`", match.group())


def config_choices() -> dict[str, tuple]:
    """Every configuration key with a vocabulary, and its choices (each group's
    ``name`` as the group itself: ``update``, ``schedule``...)."""
    choices = {}
    for update, schedule in (("plain", "constant"), ("momentum", "step"), ("adam", "constant")):
        cfg = compose_cfg(f"update={update}", f"schedule={schedule}")
        for group, table in group_tables(cfg).items():
            for key, constraints in table.items():
                for c in constraints:
                    if isinstance(c, Options):
                        name = group if key == "name" else f"{group}.{key}"
                        choices[name] = c.values
    choices["optimizer"] = choices.pop("optimizer.variant")
    return choices


CONFIG_ROWS = {
    cell.strip("`"): cells[-1]
    for cell, cells in table_rows("| key | default | meaning |").items()
    if re.fullmatch(r"`[\w.]+`", cell)
}


@pytest.mark.parametrize("key", sorted(set(config_choices()) & set(CONFIG_ROWS)))
def test_the_configuration_tables_choices_are_the_code_s(key):
    valid = config_choices()[key]
    row = CONFIG_ROWS[key]
    assert set(listed(row)) == set(valid) - {"auto"}, key
    if "auto" in valid:
        assert "`auto`" in row, key


def test_every_key_with_choices_has_its_row():
    rows_with_lists = {k for k in config_choices() if not k.startswith("dataset.")}
    assert rows_with_lists <= set(CONFIG_ROWS), rows_with_lists - set(CONFIG_ROWS)


@pytest.mark.parametrize("name", sorted(DATASET_OPTIONS))
def test_the_data_sets_table_lists_each_loaders_options(name):
    row = table_rows("| name | what | options |")[f"`{name}`"][-1]
    options = set(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", row)))
    # mirrors: a loader argument (the download URLs) no run configuration sets
    expected = set(DATASET_OPTIONS[name]) | ({"mirrors"} if name == "mnist" else set())
    assert options == expected
    for option, constraints in DATASET_OPTIONS[name].items():
        for c in constraints:
            if isinstance(c, Options) and f"`{option}` (" in row:
                assert set(listed(row.split(f"`{option}` (", 1)[1])) == set(c.values), option


def test_the_mnist_sources_table_lists_every_source():
    rows = table_rows("| `dataset.source` | training subset | validation subset | files needed |")
    assert {re.match(r"`(\w+)`", cell).group(1) for cell in rows} == set(MNIST_SOURCES)
