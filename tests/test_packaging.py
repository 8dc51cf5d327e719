"""Packaging: every folder is installed under agentlightning.*, and the core needs no extra."""
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    found = set()
    for prefix, folder in mapping.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            if any(part.startswith((".", "__")) for part in rel.parts):
                continue
            name = ".".join([prefix, *rel.parts]) if rel.parts else prefix
            # Folders mapped separately (agentlightning.core lives in core/, not agentlightning/core).
            if any(name != p and name.startswith(p + ".") and mapping[p] != folder for p in mapping):
                continue
            found.add(name)
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"


BLOCKER = r"""
import sys, importlib.abc
BLOCKED = ("langchain", "langchain_core", "langgraph", "autogen", "autogen_core", "autogen_agentchat",
           "autogen_ext", "agents", "crewai", "openai", "torch", "transformers", "trl", "peft", "vllm",
           "datasets", "pyarrow", "numpy")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: not installed)", name=name)
        return None
sys.meta_path.insert(0, Block())
import agentlightning
from agentlightning import core
import agentlightning.core.server, agentlightning.core.client, agentlightning.core.cli
agentlightning.core.cli.build_parser()
assert agentlightning.SpanKind.LLM
print("ok")
"""


def test_import_agentlightning_with_no_extra_installed():
    result = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
