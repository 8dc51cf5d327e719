"""Calc-X with AutoGen: an AssistantAgent with a calculator tool solves arithmetic word problems.

``EXAMPLE`` is what ``agentlightning demo calc`` drives; the agent itself is :mod:`.agent` (imported
only by the runner processes, so this package imports no AutoGen).
"""
from agentlightning.examples.base import Example
from agentlightning.examples.calc.data import generate, load
from agentlightning.examples.calc.reward import reward
from agentlightning.examples.calc.teacher import teacher_script

EXAMPLE = Example(
    name="calc",
    agent="agentlightning.examples.calc.agent:solve",
    train_agents="solver",
    generate=generate,
    load=load,
    reward=reward,
    description="Calc-X word problems, AutoGen AssistantAgent + calculator tool; reward = numeric match "
                "(1.0 with 'Answer: N', 0.5 right number without it)",
    success_threshold=0.5,
    defaults={"steps": 8, "group_size": 4, "tasks_per_step": 4, "n_train": 64, "n_test": 24, "workers": 8,
              "max_new_tokens": 48, "temperature": 0.8, "learning_rate": 4e-5, "level": 1,
              "warmup": True, "warmup_tasks": 16, "warmup_epochs": 1},
    teacher=teacher_script,
)

__all__ = ["EXAMPLE"]
