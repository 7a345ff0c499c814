"""The docs keep up with the code: every setting is documented, and docs/cli.md is the current ``--help``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shipyard.cli.gendocs import command_paths, help_text, render_markdown
from shipyard.config import SETTINGS, Setting

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
REGENERATE = "regenerate it with: python -m shipyard.cli.gendocs > docs/cli.md"


@pytest.fixture(scope="module")
def configuration_page() -> str:
    return (DOCS / "configuration.md").read_text()


@pytest.fixture(scope="module")
def cli_page() -> str:
    return (DOCS / "cli.md").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented_with_its_env_var(setting: Setting, configuration_page: str) -> None:
    name, env_var = setting.name, setting.env_var
    row = next((line for line in configuration_page.splitlines() if f"`{env_var}`" in line), None)
    assert row is not None, f"docs/configuration.md does not mention {env_var}"
    assert f"`{name}`" in row, f"the row of {env_var} in docs/configuration.md should name setting `{name}`"


@pytest.mark.parametrize("path", [(), *command_paths()], ids=lambda p: " ".join(("shipyard", *p)))
def test_cli_page_holds_the_help_of_every_command(path: tuple[str, ...], cli_page: str) -> None:
    assert help_text(path) in cli_page, f"docs/cli.md is stale for `shipyard {' '.join(path)}`; {REGENERATE}"


def test_cli_page_is_exactly_what_gendocs_prints(cli_page: str) -> None:
    assert cli_page == render_markdown(), f"docs/cli.md is stale; {REGENERATE}"


def test_readme_gives_the_two_quick_start_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


PAGES = sorted(["README.md", *(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))])


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_point_at_files_that_exist(page: str) -> None:
    source = ROOT / page
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", source.read_text()):
        assert (source.parent / target).exists(), f"{page} links to missing {target}"


def test_storage_page_names_every_table_and_migration() -> None:
    from shipyard.store.sql import schema

    page = (DOCS / "storage.md").read_text()
    for table in schema.metadata.tables:
        assert f"`{table}`" in page, f"docs/storage.md does not name the table {table!r}"
    migrations = ROOT / "src/shipyard/store/sql/migrations/versions"
    for path in sorted(migrations.glob("[0-9]*.py")):
        number = path.name[:4]
        assert f"| {number} " in page, f"docs/storage.md's table has no row for migration {path.name}"
