"""Include expansion is bounded (issue 15 item 4): a symlink loop, a link out
of the tree or a pattern over /proc could make glob run for ever, and with it
validate, scan and an exporter's SIGHUP reload. It matches what glob matches
on an ordinary tree, and stops with a clear problem at its bounds."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scanner.errors import InventoryError
from scanner.inventory import load_inventory
from scanner.inventory.files import expand_include

ROOT = Path(__file__).resolve().parent.parent


def _tree(base: Path) -> None:
    for name in (
        "a.yaml",
        "b.yml",
        ".hidden.yaml",
        "teams/web.yaml",
        "teams/pay.yaml",
        "teams/deep/x/y.yaml",
        "teams/.secret/z.yaml",
        "teams/notes.txt",
        "other/q.yaml",
    ):
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("endpoints: []\n")


@pytest.mark.parametrize(
    "pattern",
    [
        "*.yaml",
        "*.y*ml",
        "teams/*.yaml",
        "teams/**/*.yaml",
        "**/*.yaml",
        "**",
        "teams/**",
        "t?ams/[pw]*.yaml",
        ".*.yaml",
        "teams/.*/*.yaml",
        "a.yaml",
        "missing/*.yaml",
        "./teams/../a.yaml",
    ],
)
def test_the_same_files_as_glob_on_an_ordinary_tree(tmp_path: Path, pattern: str) -> None:
    _tree(tmp_path)
    want = sorted(
        m
        for m in glob.glob(pattern, root_dir=tmp_path, recursive=True)
        if os.path.isfile(tmp_path / m)
    )
    got = expand_include(pattern, str(tmp_path))
    assert [os.path.normpath(m) for m in got] == [os.path.normpath(m) for m in want]


def test_a_symlink_loop_is_not_walked(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "teams" / "loop").symlink_to(".")
    (tmp_path / "up").symlink_to(tmp_path)
    assert expand_include("**/*.yaml", str(tmp_path)) == [
        "a.yaml",
        "other/q.yaml",
        "teams/deep/x/y.yaml",
        "teams/pay.yaml",
        "teams/web.yaml",
    ]


def test_a_link_named_in_the_pattern_is_followed(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "alias").symlink_to(tmp_path / "teams")
    assert expand_include("alias/*.yaml", str(tmp_path)) == ["alias/pay.yaml", "alias/web.yaml"]


def test_too_many_entries_is_a_problem_not_a_hang(tmp_path: Path) -> None:
    for n in range(50):
        (tmp_path / f"f{n}.yaml").write_text("endpoints: []\n")
    with pytest.raises(ValueError, match=r"^looked at more than 20 directory entries$"):
        expand_include("*.yaml", str(tmp_path), limit=20)


def test_validate_ends_on_a_loop_and_on_proc(tmp_path: Path) -> None:
    """In a child process with a timeout: before, both never returned."""
    (tmp_path / "a").symlink_to(".")
    (tmp_path / "b").symlink_to("..")
    inventory = tmp_path / "inv.yaml"
    (tmp_path / "teams").mkdir()
    (tmp_path / "teams" / "web.yaml").write_text("endpoints: []\n")
    inventory.write_text(
        textwrap.dedent(
            """\
            version: 1
            include: ["teams/**/*.yaml", "/proc/**/status", "/proc/self/status"]
            endpoints: []
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "scanner", "validate", "-i", str(inventory)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"pinaudit validate: error: {inventory}:2:30: include[1]: refused: include pattern "
        "'/proc/**/status' reaches into /proc",
        f"pinaudit validate: error: {inventory}:2:49: include[2]: refused: include pattern "
        "'/proc/self/status' reaches into /proc",
        "pinaudit validate: 2 problems; nothing scanned",
    ]  # and include[0], through the loops, found teams/web.yaml once


def test_an_inventory_including_itself_through_a_glob_is_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text('version: 1\ninclude: ["*.yaml"]\nendpoints: []\n')
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "inv.yaml")
    assert "include cycle" in str(caught.value)
