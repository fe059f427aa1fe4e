"""selfhost/*.sh: valid bash, the recommended flags, and the same flags as compose and Kubernetes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import COMPOSE, K8S, ROOT, flags, load_all, load_yaml

SCRIPTS = {"scout": ROOT / "selfhost" / "scout-h100.sh", "maverick": ROOT / "selfhost" / "maverick-h100.sh"}
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")


@pytest.mark.parametrize("script", SCRIPTS.values(), ids=SCRIPTS.keys())
def test_bash_syntax(script: Path) -> None:
    assert BASH is not None
    result = subprocess.run([BASH, "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def launched_args(script: Path, tmp_path: Path, **env: str) -> list[str]:
    """Run the script with a stub `vllm` on PATH that prints its arguments, one per line."""
    assert BASH is not None
    stub = tmp_path / "vllm"
    stub.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    stub.chmod(0o755)
    run_env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}", **env}
    result = subprocess.run([BASH, str(script)], env=run_env, capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "serve"
    return lines[1:]


@pytest.mark.parametrize("model", SCRIPTS.keys())
def test_launch_flags(model: str, tmp_path: Path) -> None:
    args = flags(launched_args(SCRIPTS[model], tmp_path))
    assert args["--tensor-parallel-size"] == "8"
    assert args["--kv-cache-dtype"] == "fp8"
    assert "--enable-auto-tool-choice" in args
    assert args["--tool-call-parser"] == "llama4_pythonic"
    assert args["--chat-template"].endswith("tool_chat_template_llama4_pythonic.jinja")
    assert "--enable-prefix-caching" in args
    assert "--no-enable-prefix-caching" not in args
    assert args["--limit-mm-per-prompt"] == '{"image": 5}'
    assert "--api-key" not in args, "the key comes from VLLM_API_KEY, never the command line"
    expected = {
        "scout": ("meta-llama/Llama-4-Scout-17B-16E-Instruct", "1000000"),
        "maverick": ("meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8", "430000"),
    }[model]
    assert (args["model"], args["--max-model-len"]) == expected


def test_overrides_from_environment(tmp_path: Path) -> None:
    args = flags(launched_args(SCRIPTS["scout"], tmp_path, MAX_MODEL_LEN="262144", TP="4", MAX_IMAGES="2"))
    assert args["--max-model-len"] == "262144"
    assert args["--tensor-parallel-size"] == "4"
    assert args["--limit-mm-per-prompt"] == '{"image": 2}'


@pytest.mark.parametrize("model", SCRIPTS.keys())
def test_compose_and_kubernetes_use_the_same_flags(model: str, tmp_path: Path) -> None:
    script = flags(launched_args(SCRIPTS[model], tmp_path))
    compose = flags(load_yaml(COMPOSE)["services"][f"vllm-{model}"]["command"])
    deployment = next(d for d in load_all(K8S / f"vllm-{model}.yaml") if d["kind"] == "Deployment")
    k8s = flags(deployment["spec"]["template"]["spec"]["containers"][0]["args"])
    assert compose == script
    assert k8s == script
