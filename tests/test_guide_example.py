"""The user guide's Python API example runs, on a tiny study instead of the quickstart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import tiny_dict, write_study

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.e2e
def test_the_python_api_example_runs(tmp_path, monkeypatch):
    guide = (ROOT / "docs" / "guide.md").read_text()
    [code] = re.findall(r"## Python API.*?```python\n(.*?)```", guide, flags=re.S)
    study = write_study(
        tmp_path, tiny_dict(seeds=[0, 1], grid={"distill.teachers": [[], ["conv"]]})
    )
    code = code.replace("studies/quickstart.yaml", str(study))
    monkeypatch.chdir(tmp_path)  # results/ of the example land in the temporary folder
    scope: dict[str, object] = {}
    exec(compile(code, "docs/guide.md", "exec"), scope)  # noqa: S102  (the guide's own code)
    assert scope["summary"].complete == 4
    assert scope["frame"].height == 2 and scope["deltas"].height == 1
    assert scope["state"].counts["complete"] == 4
    assert Path(scope["page"]).is_file()
