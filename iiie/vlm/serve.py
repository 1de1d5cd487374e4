"""Start vLLM's OpenAI-compatible server for the configured VLM (``make serve-vlm``).

The ``vllm serve`` command line is built from the Hydra ``vlm`` node, so the server and the
planner agree on the model name, host and port by construction::

    python -m iiie.vlm.serve                          # vlm=qwen2_5_vl_7b on 127.0.0.1:8000
    python -m iiie.vlm.serve vlm=qwen3_vl_8b vlm.serve.port=8001 vlm.base_url=...
    python -m iiie.vlm.serve --dry-run vlm=qwen2_vl_7b   # print the command, start nothing
    make serve-vlm ARGS='vlm=qwen3_vl_8b'

Arguments starting with ``--`` are this script's own; the rest are Hydra overrides of
``conf/config.yaml``. The server replaces this process (``exec``), so Ctrl-C and signals
reach vLLM directly. An API key (``vlm.api_key`` or the ``vlm.api_key_env`` variable) is
handed to vLLM through ``VLLM_API_KEY``, never on the command line.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from iiie.errors import GPU_INSTALL, BackendUnavailableError, IIIEError
from iiie.vlm.settings import VLMSettings

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
USAGE = "usage: python -m iiie.vlm.serve [--dry-run] [--no-check] [HYDRA_OVERRIDES...]"


def build_command(vlm: Mapping[str, Any], executable: str = "vllm") -> list[str]:
    """The ``vllm serve`` argv for a resolved ``vlm`` node (a plain dict)."""
    serve = dict(vlm.get("serve") or {})
    model_path = serve.get("model_path")
    if not model_path or str(model_path) == "???":
        raise ValueError("vlm.serve.model_path is not set: point it at the local model folder")
    limit = serve.get("limit_mm_per_prompt") or {"image": 1}
    cmd = [
        executable,
        "serve",
        str(model_path),
        "--served-model-name",
        str(vlm["model"]),
        "--host",
        str(serve.get("host", "127.0.0.1")),
        "--port",
        str(int(serve.get("port", 8000))),
        "--limit-mm-per-prompt",
        json.dumps(dict(limit), separators=(",", ":")),
    ]
    optional = [
        ("--max-model-len", serve.get("max_model_len")),
        ("--gpu-memory-utilization", serve.get("gpu_memory_utilization")),
        ("--dtype", serve.get("dtype")),
        ("--tensor-parallel-size", serve.get("tensor_parallel_size")),
        ("--data-parallel-size", serve.get("data_parallel_size")),
        ("--max-num-seqs", serve.get("max_num_seqs")),
        ("--seed", serve.get("seed")),
        # vllm: sample only with the request's explicit fields (iiie/vlm/sampling.py), as the
        # offline engine does; auto would fill unset ones from generation_config.json
        ("--generation-config", serve.get("generation_config", "vllm")),
    ]
    for flag, value in optional:
        if value is not None:
            cmd += [flag, str(value)]
    cmd += [str(a) for a in (serve.get("extra_args") or [])]
    return cmd


def check_base_url(vlm: Mapping[str, Any]) -> str | None:
    """A warning when ``vlm.base_url`` does not point at the host/port being served."""
    serve = vlm.get("serve") or {}
    host, port = str(serve.get("host", "127.0.0.1")), int(serve.get("port", 8000))
    url = urlsplit(str(vlm.get("base_url", "")))
    local = {"127.0.0.1", "localhost", "0.0.0.0"}
    same_host = url.hostname == host or (host in local and url.hostname in local)
    if url.port == port and same_host:
        return None
    return (
        f"note: vlm.base_url={vlm.get('base_url')} does not point at the served {host}:{port}; "
        f"the planner will look there. Set vlm.base_url=http://{host}:{port}/v1 if that is "
        "not intended."
    )


def compose_vlm(overrides: Sequence[str]) -> dict[str, Any]:
    """Compose ``conf/config.yaml`` with ``overrides`` and return the resolved ``vlm`` node."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=list(overrides))
    if "vlm" not in cfg:
        raise ValueError(
            "conf/config.yaml composes no `vlm` group: add `- vlm: qwen2_5_vl_7b` to its "
            "defaults, or pass +vlm=qwen2_5_vl_7b"
        )
    return OmegaConf.to_container(cfg.vlm, resolve=True)  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: errors meant for the user (missing weights, no ``vllm``) print one
    ``error: ...`` line and exit 2 instead of a traceback."""
    from iiie.weights import MissingWeightsError

    try:
        return serve(argv)
    except (MissingWeightsError, IIIEError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2


def serve(argv: Sequence[str] | None = None) -> int:
    """Compose the config, check the weights and exec ``vllm serve`` (raises on errors)."""
    args = list(sys.argv[1:] if argv is None else argv)
    flags = {a for a in args if a.startswith("--")}
    overrides = [a for a in args if not a.startswith("--")]
    unknown = flags - {"--dry-run", "--no-check", "--help"}
    if "--help" in flags or unknown:
        print(__doc__)
        print(USAGE)
        if unknown:
            print(f"unknown option(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2 if unknown else 0
    vlm = compose_vlm(overrides)
    settings = VLMSettings.from_config(vlm)  # same validation as the planner's
    executable = shutil.which("vllm") or "vllm"
    cmd = build_command(vlm, executable)
    print("$ " + shlex.join(cmd), flush=True)
    if warning := check_base_url(vlm):
        print(warning, file=sys.stderr, flush=True)
    if "--dry-run" in flags:
        return 0
    if "--no-check" not in flags:
        from iiie.weights import require_files

        require_files(
            vlm["serve"]["model_path"],
            ["config.json"],
            "vlm.serve.model_path",
            hint="Put the model's Hugging Face folder there (see README, Weights).",
        )
    if shutil.which("vllm") is None:
        raise BackendUnavailableError(
            f"the `vllm` command is not on PATH: install the GPU extra with {GPU_INSTALL}"
        )
    env = dict(os.environ)
    key = settings.api_key or os.environ.get(settings.api_key_env or "")
    if key:
        env["VLLM_API_KEY"] = str(key)
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
