"""docs/plugins.md: its example plugin works as the page says, and the built page renders as written.

The task class on the page is saved as a package and loaded through the page's study file (an import
path), with a ``Rule`` of each kind; in chromium at 1280 px, the list under "What a plugin is" is
nested as intended and no code block is cut off at the right edge.
"""

from __future__ import annotations

import re
import tomllib

import pytest

from .test_docs import DOCS, FENCE, build_site


def _page_block(page: str, lang: str, marker: str) -> str:
    blocks = [b for fence_lang, b in FENCE.findall(page) if fence_lang == lang and marker in b]
    assert len(blocks) == 1, f"one {lang} block with {marker!r} on the page, found {len(blocks)}"
    return blocks[0]


def test_the_plugins_page_example_is_a_working_plugin(tmp_path, monkeypatch, clean_registry):
    """docs/plugins.md's task class, saved as my_package/task.py, loads the page's study file (the import
    path), declares the rule of each kind the page's table shows, trains, tests, and signals divergence."""
    import torch

    from mnist_hpo.config import parse_study
    from mnist_hpo.data.datasets import Dataset
    from mnist_hpo.tasks import NonFiniteLoss, Rule, registry

    page = (DOCS / "plugins.md").read_text()
    (tmp_path / "my_package").mkdir()
    (tmp_path / "my_package" / "__init__.py").write_text("")
    (tmp_path / "my_package" / "task.py").write_text(_page_block(page, "python", "class MyTask(Task)"))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = parse_study(tomllib.loads(_page_block(page, "toml", "my_package.task:MyTask")), source="my-model.toml")
    cls = registry.resolve(cfg.model)
    rows = re.findall(r"^\| (\w+) \| `\"(\w+)\": (Rule\(.*?\))` \| `\[space\.(\w+)\]`", page, re.M)
    assert [kind for kind, *_ in rows] == ["int", "float", "log", "choices", "optional"]
    for kind, name, rule, table in rows:
        assert name == table and eval(rule, {"Rule": Rule}) == cls.space_rules[name], kind
    assert cfg.space["lr"].log and not cls.space_rules["weight_decay"].required
    assert "weight_decay" not in cfg.space and cfg.model_options == {"layers": 2}

    g = torch.Generator().manual_seed(0)
    images = lambda n: torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)  # noqa: E731
    data = Dataset("mnist", images(60), torch.arange(60) % 10, images(20), torch.arange(20) % 10, "0" * 64)
    task = cls(cfg.with_overrides(device="cpu"), data)
    params = {"hidden": 8, "dropout": 0.1, "lr": 1e-3, "activation": "relu"}
    epochs = []
    result = task.fit(params, seed=0, epochs=2, full=False, on_epoch=lambda *a: epochs.append(a))
    assert [e[0] for e in epochs] == [0, 1] and 0 <= result.value <= 1 and result.value == epochs[-1][2]
    assert set(task.test(result.model)) == {"test_acc"}
    with pytest.raises(NonFiniteLoss):  # a learning rate that makes the loss diverge
        task.fit({**params, "lr": 1e35}, seed=0, epochs=3, full=False)


# What the plugins page renders to at 1280 px: the list under "What a plugin is", and code cut at the right edge.
PROBE = """<script>
const list = document.getElementById("what-a-plugin-is").nextElementSibling;
const code = [...document.querySelectorAll(".md-typeset pre > code")];
document.body.dataset.probe = JSON.stringify({
  list: list.tagName,
  start: list.start,
  items: [...list.children].map(li => [li.tagName, li.textContent.trim().slice(0, 14),
                                       li.querySelectorAll(":scope > ul > li").length,
                                       li.querySelectorAll(":scope pre").length]),
  blocks: code.length,
  cut: code.filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent.slice(0, 60)),
});
</script>"""


@pytest.mark.browser
def test_the_plugins_page_renders_its_lists_nested_and_no_code_cut_off_at_1280px(tmp_path):
    import html
    import json

    from tests.report.test_browser import run_chromium

    out = build_site(tmp_path / "site")
    assert out.returncode == 0, out.stderr[-3000:]
    page = tmp_path / "site" / "plugins" / "index.html"
    probe = page.with_name("probe.html")  # beside it: the same stylesheets and scripts
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = run_chromium(probe.as_uri(), "--dump-dom", "--window-size=1280,1400", budget_ms=5000)
    found = json.loads(html.unescape(re.search(r'data-probe="([^"]*)"', dom).group(1)))
    # 1. a task class (its five members a nested list), 2. an entry point (with its TOML), 3. a study file
    assert found["list"] == "OL" and found["start"] == 1
    assert found["items"] == [
        ["LI", "A task class: ", 5, 0],
        ["LI", "An entry point", 0, 1],
        ["LI", "A study file t", 0, 0],
    ]
    assert found["blocks"] >= 4 and found["cut"] == []
