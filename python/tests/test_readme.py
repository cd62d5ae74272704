"""The README's pytest example runs as written."""

from __future__ import annotations

import re

import pytest

from conftest import workspace_root


def readme_example() -> str:
    text = (workspace_root() / "README.md").read_text()
    section = text.split("## pytest: ", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, f"expected one python example, found {len(blocks)}"
    return blocks[0]


def test_the_readme_example_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_readme_example=readme_example())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
