"""``agentlightning demo``'s Python API: generate data, evaluate, train, evaluate again, report.

    from agentlightning.examples.demo import DemoConfig, run_demo
    result = run_demo(DemoConfig("calc", steps=12, out="demo-calc"))
    print(result.table)

One :class:`~agentlightning.trainer.loop.TrainingLoop` does everything: it starts the embedded
Lightning server, the model server (CPU by default; ``device="cuda"`` or a vLLM venv for a GPU) and the
runner processes. The untrained policy answers the held-out split first (greedy); when the warm-up is on
(calc and sql by default, rag with ``warmup=True``: each has a teacher that plays its tasks' worked solutions),
the loop clones the teacher's demonstrations and the warmed-up policy answers the held-out split again;
the loop trains for ``steps``
RL steps on the training split, and the trained policy answers the held-out split once more. Written
under ``out``: ``data/`` (the generated dataset in the example's official format), ``run/`` (the loop's
checkpoints, ``metrics.jsonl``, logs, database), ``eval.json``, ``summary.json``, ``reward_curve.png``.
"""
from __future__ import annotations

import importlib
import inspect
import json
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from agentlightning.examples.base import Example

# The demo finds examples by name; each module exposes ``EXAMPLE`` (examples/base.py).
EXAMPLES = {
    "calc": "agentlightning.examples.calc",
    "sql": "agentlightning.examples.sql",
    "rag": "agentlightning.examples.rag",
}


class DemoError(RuntimeError):
    """The demo cannot run as asked (unknown or unavailable example, bad data path)."""


def get_example(name: str) -> Example:
    """The ``EXAMPLE`` of a named example, or a :class:`DemoError` that says what is missing."""
    module_name = EXAMPLES.get(name)
    if module_name is None:
        raise DemoError(f"unknown example {name!r}; available: {', '.join(sorted(EXAMPLES))}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise DemoError(f"example {name!r} is not installed ({module_name} is missing)") from exc
        raise DemoError(f"example {name!r} needs {exc.name}, which is not installed "
                        f"(pip install 'agentlightning[examples]')") from exc
    example = getattr(module, "EXAMPLE", None)
    if not isinstance(example, Example):
        raise DemoError(f"{module_name} defines no EXAMPLE (an agentlightning.examples.base.Example) yet")
    return example


@dataclass
class DemoConfig:
    """One demo run; ``None`` fields take the example's ``defaults`` (then the values below).

    data:  a dataset in the example's official format instead of a generated one: a directory with
           ``train``/``test`` files (or whatever the example's loader reads), or one file/directory whose
           last ``n_test`` tasks become the held-out split.
    vllm:  the path of a vLLM virtual environment: serve the policy with vLLM (GPU) behind the version
           gateway, training LoRA adapters.
    """

    example: str
    steps: Optional[int] = None
    group_size: Optional[int] = None
    tasks_per_step: Optional[int] = None
    workers: Optional[int] = None
    model: str = "smollm2-135m-instruct"
    device: str = "auto"
    vllm: Optional[str] = None
    air: bool = True
    seed: int = 0
    data: Optional[str] = None
    out: str = "agentlightning-demo"
    n_train: Optional[int] = None
    n_test: Optional[int] = None
    max_new_tokens: Optional[int] = None
    learning_rate: Optional[float] = None
    lora: Optional[bool] = None
    temperature: Optional[float] = None  # sampling temperature of training rollouts
    warmup: Optional[bool] = None         # behaviour cloning on the example's teacher before RL
    warmup_tasks: Optional[int] = None
    warmup_epochs: Optional[int] = None
    eval_temperature: float = 0.0
    evaluate: bool = True
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # passed to the example's generator (e.g. level)

    def resolved(self, example: Example) -> dict[str, Any]:
        d = example.defaults
        pick = lambda key, fallback: getattr(self, key) if getattr(self, key) is not None else d.get(key, fallback)  # noqa: E731
        return {"steps": pick("steps", 10), "group_size": pick("group_size", 4),
                "tasks_per_step": pick("tasks_per_step", 8), "workers": pick("workers", 4),
                "n_train": pick("n_train", 200), "n_test": pick("n_test", 32),
                "max_new_tokens": pick("max_new_tokens", 64), "learning_rate": pick("learning_rate", None),
                "lora": pick("lora", bool(self.vllm)), "temperature": pick("temperature", 1.0),
                "warmup": bool(pick("warmup", False)) and example.teacher is not None,
                "warmup_tasks": pick("warmup_tasks", 16), "warmup_epochs": pick("warmup_epochs", 1)}


@dataclass
class DemoResult:
    example: str
    settings: dict[str, Any]
    before: Any = None
    warmed: Any = None          # held-out evaluation after the warm-up (the RL starting point)
    warmup: Optional[dict[str, Any]] = None
    after: Any = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    table: str = ""
    curve: Optional[str] = None
    seconds: float = 0.0
    interrupted: bool = False


def prepare_data(example: Example, config: DemoConfig, n_train: int, n_test: int,
                 data_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train tasks, held-out tasks): from ``config.data``, else freshly generated under ``data_dir``."""
    if config.data:
        root = Path(config.data)
        if not root.exists():
            raise DemoError(f"--data {root} does not exist")
        train_file, test_file = _split_files(root)
        if train_file is not None and test_file is not None:
            train, test = example.load(train_file), example.load(test_file)
        else:
            tasks = example.load(root)
            random.Random(config.seed).shuffle(tasks)
            if len(tasks) < 2:
                raise DemoError(f"{root} holds {len(tasks)} task(s); need a training and a held-out part")
            cut = max(1, min(n_test, len(tasks) // 2))
            train, test = tasks[cut:], tasks[:cut]
        return train[:n_train] if n_train else train, test[:n_test] if n_test else test
    accepted = inspect.signature(example.generate).parameters
    extra = {k: v for k, v in {**example.defaults, **config.extra}.items() if k in accepted
             and k not in ("out_dir", "n_train", "n_test", "seed")}
    files = example.generate(data_dir, n_train, n_test, config.seed, **extra)
    return example.load(files["train"]), example.load(files["test"])


def _split_files(root: Path) -> tuple[Optional[Path], Optional[Path]]:
    if not root.is_dir():
        return None, None
    found: dict[str, Path] = {}
    for child in sorted(root.iterdir()):
        for split in ("train", "test"):
            if child.name == split or child.name.startswith(split + ".") or child.name.startswith(split + "-"):
                found.setdefault(split, child)
    return found.get("train"), found.get("test")


def build_train_config(example: Example, config: DemoConfig, settings: dict[str, Any],
                       train_tasks: list[dict[str, Any]], run_dir: Path, model_server: Optional[str] = None,
                       teacher_url: Optional[str] = None):
    from agentlightning.core.lightningrl.config import AirConfig, LightningRLConfig
    from agentlightning.trainer.loop_config import TrainConfig
    from agentlightning.trainer.update_config import UpdateConfig

    token_cap = {"max_tokens": settings["max_new_tokens"], "temperature": settings["temperature"]}
    # A demo always starts over (never resumes), so it keeps only the live checkpoint and no optimizer state:
    # a full SmolLM2 checkpoint with AdamW's state is ~1.6 GB, and three were kept per run.
    update = UpdateConfig(learning_rate=settings["learning_rate"], lora=settings["lora"], device=config.device,
                          seed=config.seed, save_optimizer=False)
    lightningrl = LightningRLConfig(agents=example.train_agents, air=AirConfig(enabled=config.air))
    warmup = None
    if teacher_url:
        from agentlightning.trainer.warmup import WarmupConfig

        warmup = WarmupConfig(teacher_url=teacher_url, tasks=settings["warmup_tasks"],
                              epochs=settings["warmup_epochs"])
    return TrainConfig(agent=example.agent, data=[{**t, **token_cap} for t in train_tasks], model=config.model,
                       steps=settings["steps"], group_size=settings["group_size"],
                       tasks_per_step=min(settings["tasks_per_step"], len(train_tasks)),
                       workers=settings["workers"], run_dir=run_dir, model_server=model_server,
                       rollout_timeout_s=300.0, success_threshold=example.success_threshold, seed=config.seed,
                       keep_checkpoints=1, progress=config.progress, update=update, lightningrl=lightningrl,
                       warmup=warmup)


def run_demo(config: DemoConfig) -> DemoResult:
    """Generate (or load) data, evaluate, train, evaluate again; see the module docstring."""
    from agentlightning.examples import demo_eval
    from agentlightning.trainer.loop import TrainingLoop

    started = time.monotonic()
    example = get_example(config.example)
    settings = config.resolved(example)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / "run"
    if (run_dir / "state.json").exists():
        shutil.rmtree(run_dir)  # a demo always starts from the untrained model
    train_tasks, test_tasks = prepare_data(example, config, settings["n_train"], settings["n_test"], out / "data")
    say = print if config.progress else (lambda *a, **k: None)
    say(f"demo {example.name}: {len(train_tasks)} training / {len(test_tasks)} held-out tasks, model "
        f"{config.model}, {settings['steps']} steps x {settings['tasks_per_step']} tasks x "
        f"{settings['group_size']} rollouts, AIR {'on' if config.air else 'off'}", flush=True)
    vllm = _start_vllm(config) if config.vllm else None
    teacher = _start_teacher(example, train_tasks) if settings["warmup"] else None
    result = DemoResult(example=example.name, settings={**_public(config), **settings})  # resolved values win
    loop = TrainingLoop(build_train_config(example, config, settings, train_tasks, run_dir,
                                           model_server=vllm[1].url if vllm else None,
                                           teacher_url=teacher.base_url if teacher else None))
    eval_input = {"temperature": config.eval_temperature, "max_tokens": settings["max_new_tokens"]}
    evaluate = config.evaluate and bool(test_tasks)
    try:
        loop.open()
        if not loop.workers.procs:
            loop.workers.start()  # zero training steps: the evaluation still needs runners
        if evaluate:
            result.before = demo_eval.evaluate(loop, test_tasks, "before", example.success_threshold, eval_input,
                                               progress=config.progress)
        if teacher is not None:
            result.warmup = loop.warm_up()
            teacher.stop()
            if evaluate:
                result.warmed = demo_eval.evaluate(loop, test_tasks, "warmed-up", example.success_threshold,
                                                   eval_input, progress=config.progress)
        while loop.state.step < loop.config.steps:
            loop.run_step(loop.state.step)
        if config.evaluate and test_tasks and settings["steps"] > 0:
            result.after = demo_eval.evaluate(loop, test_tasks, "after", example.success_threshold, eval_input,
                                              progress=config.progress)
        loop.state.phase = "done"
        loop.state.save(run_dir)
    except KeyboardInterrupt:
        result.interrupted = True  # Ctrl-C: report what was measured so far
        say("interrupted: reporting the steps finished so far", flush=True)
    finally:
        if loop.metrics is not None:
            result.rows = list(loop.metrics.rows)
        loop.close()
        if teacher is not None:
            teacher.stop()
        if vllm is not None:
            vllm[1].stop()
            vllm[0].stop()
    result.seconds = round(time.monotonic() - started, 1)
    if result.before is not None:
        result.table = demo_eval.table(result.before, result.after, warmed=result.warmed)
    curve = demo_eval.plot(result.rows, result.before, result.after, out / "reward_curve.png",
                           f"agentlightning demo {example.name} ({config.model}, AIR {'on' if config.air else 'off'})",
                           warmed=result.warmed)
    result.curve = str(curve) if curve else None
    summary = {"example": example.name, "settings": result.settings, "seconds": result.seconds,
               "interrupted": result.interrupted,
               "before": result.before.to_dict() if result.before else None, "warmup": result.warmup,
               "warmed": result.warmed.to_dict() if result.warmed else None,
               "after": result.after.to_dict() if result.after else None,
               "train": [{k: r.get(k) for k in ("step", "reward_mean", "success_rate", "air_mean", "air_fired",
                                                "rollout_seconds", "update_seconds")} for r in result.rows]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return result


def _public(config: DemoConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(config).items() if k not in ("progress",)}


def _start_teacher(example: Example, train_tasks: list[dict[str, Any]]):
    """The example's scripted warm-up teacher on 127.0.0.1, playing the training tasks' worked solutions."""
    from agentlightning.testing.scripted_llm import ScriptedLLMServer

    assert example.teacher is not None
    return ScriptedLLMServer(example.teacher(train_tasks), model="teacher").start()


def _start_vllm(config: DemoConfig):
    """vLLM from its own venv plus the version gateway in front (the CPU server's contract)."""
    from agentlightning.trainer.vllm_backend import VLLMConfig, VLLMLauncher
    from agentlightning.trainer.vllm_gateway import VersionGateway

    launcher = VLLMLauncher(VLLMConfig(model=config.model, venv=config.vllm),
                            log_path=str(Path(config.out) / "vllm.log")).start()
    try:
        gateway = VersionGateway(launcher.url, base_model=launcher.config.name).start()
    except Exception:
        launcher.stop()
        raise
    return launcher, gateway
