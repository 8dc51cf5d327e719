"""The TRL-based policy update on the tiny random model: weights move, recorded logprobs drive the
ratio and clipping, LoRA and full checkpoints round-trip, KL to the reference is computed."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from agentlightning.core.lightningrl.types import RewardBreakdown, Transition  # noqa: E402
from agentlightning.trainer.checkpoints import read_checkpoint  # noqa: E402
from agentlightning.trainer.update import PolicyUpdater, weights_fingerprint  # noqa: E402
from agentlightning.trainer.update_config import UpdateConfig  # noqa: E402


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> Path:
    from agentlightning.trainer.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def make_transition(prompt, response, advantage, logprobs=None, index=0) -> Transition:
    breakdown = RewardBreakdown(final_reward=advantage, final_source="rollout", air_total=0.0, air={}, air_signals=[],
                                step_rewards={}, step_reward=0.0, dimensions={})
    return Transition(rollout_id=f"r{index}", attempt_id=f"r{index}:1", group_id="g", task_id="t", agent_name="",
                      step_index=0, step_count=1, span_id=f"{index:016x}", prompt_token_ids=prompt,
                      response_token_ids=response, response_logprobs=logprobs, policy_version="v0",
                      retokenized=False, breakdown=breakdown, reward=advantage, advantage=advantage)


def random_batch(n=8, seed=0, advantages=None) -> list[Transition]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt = [rng.randrange(3, 500) for _ in range(rng.randint(4, 12))]
        response = [rng.randrange(3, 500) for _ in range(rng.randint(2, 8))]
        adv = advantages[i] if advantages else rng.choice([1.0, -1.0, 0.5, -0.5])
        out.append(make_transition(prompt, response, adv, index=i))
    return out


def current_logprobs(model, transitions) -> list[list[float]]:
    """The policy's own logprob of each response token (temperature 1), one sequence at a time."""
    out = []
    with torch.no_grad():
        for t in transitions:
            ids = torch.tensor([list(t.prompt_token_ids) + list(t.response_token_ids)])
            logits = model(input_ids=ids).logits[0, :-1].float()
            logps = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[:, 0]
            out.append(logps[len(t.prompt_token_ids) - 1:].tolist())
    return out


def test_update_changes_weights_and_reports(tiny_path, tmp_path):
    updater = PolicyUpdater(tiny_path, UpdateConfig(learning_rate=1e-3, micro_batch_size=3),
                            output_dir=tmp_path / "out")
    before = weights_fingerprint(updater.unwrapped)
    batch = random_batch()
    batch.append(make_transition([5, 6], [7], 0.0, index=99))     # zero advantage: no gradient, dropped
    batch.append(make_transition([5, 6], [], 1.0, index=98))      # empty response: dropped
    result = updater.update(batch)
    assert weights_fingerprint(updater.unwrapped) != before
    assert result.samples == 8 and result.optimizer_steps == 1
    assert result.dropped["zero_advantage"] == 1 and result.dropped["empty_response"] == 1
    assert result.tokens == sum(len(t.response_token_ids) for t in batch[:8])
    assert result.samples_per_s > 0 and "entropy" in result.trl_metrics
    assert result.old_logps_recorded == 0 and result.logprob_drift is None


def test_recorded_old_logprobs_drive_the_clipped_ratio(tiny_path, tmp_path):
    """Positive advantages with recorded logprobs far below the policy's: every token's ratio is
    above 1 + epsilon, PPO clipping zeroes the gradient, the weights stay put. The same batch
    without recorded logprobs (ratio 1) moves them."""
    config = UpdateConfig(learning_rate=1e-2, micro_batch_size=4, epsilon=0.2)
    batch = random_batch(advantages=[1.0] * 8)
    updater = PolicyUpdater(tiny_path, config, output_dir=tmp_path / "a")
    exact = current_logprobs(updater.unwrapped, batch)
    for t, lp in zip(batch, exact):
        t.response_logprobs = [x - 2.0 for x in lp]  # ratio e^2 ~ 7.4
    before = {n: p.detach().clone() for n, p in updater.unwrapped.named_parameters()}
    result = updater.update(batch)
    assert result.old_logps_recorded == 8
    assert result.trl_metrics["clip_ratio/high_mean"] == pytest.approx(1.0)
    assert result.logprob_drift == pytest.approx(2.0, abs=1e-3)
    assert all(torch.equal(p, before[n]) for n, p in updater.unwrapped.named_parameters())

    # Recorded logprobs equal to the policy's own: ratio 1, nothing clipped, the weights move.
    for t, lp in zip(batch, exact):
        t.response_logprobs = lp
    result = updater.update(batch)
    assert result.logprob_drift == pytest.approx(0.0, abs=1e-4)
    assert result.trl_metrics["clip_ratio/region_mean"] == 0.0
    assert any(not torch.equal(p, before[n]) for n, p in updater.unwrapped.named_parameters())


def test_missing_old_logprobs_are_on_policy_then_fixed_across_epochs(tiny_path, tmp_path):
    """Without recorded logprobs the first pass has ratio 1; with several epochs the later passes
    compare to the pre-update policy, so a large step gets clipped."""
    config = UpdateConfig(learning_rate=5e-2, micro_batch_size=8, epochs=4, epsilon=0.05)
    updater = PolicyUpdater(tiny_path, config, output_dir=tmp_path / "out")
    result = updater.update(random_batch(advantages=[1.0, -1.0] * 4))
    assert result.optimizer_steps == 4
    assert result.trl_metrics["clip_ratio/region_mean"] > 0.0


def test_lora_checkpoint_round_trip(tiny_path, tmp_path):
    config = UpdateConfig(lora=True, lora_r=4, lora_alpha=8, learning_rate=1e-2, micro_batch_size=4,
                          mini_batch_size=4)
    updater = PolicyUpdater(tiny_path, config, output_dir=tmp_path / "out")
    base = {n: p.detach().clone() for n, p in updater.unwrapped.named_parameters() if not p.requires_grad}
    before = weights_fingerprint(updater.unwrapped)
    result = updater.update(random_batch())
    assert result.optimizer_steps == 2  # 8 samples, 4 per optimizer step
    after = weights_fingerprint(updater.unwrapped)
    assert after != before
    assert all(torch.equal(p, base[n]) for n, p in updater.unwrapped.named_parameters() if n in base)
    info = updater.save(tmp_path / "ckpt" / "v1", "v1")
    assert info.kind == "lora" and info.version == "v1" and info.step == 1
    assert (Path(info.path) / "adapter_model.safetensors").exists()
    assert (Path(info.path) / "adapter_config.json").exists()
    assert read_checkpoint(info.path).base_model == str(tiny_path)

    fresh = PolicyUpdater(tiny_path, config, output_dir=tmp_path / "out2")
    assert weights_fingerprint(fresh.unwrapped) != after
    fresh.load(info.path)
    assert weights_fingerprint(fresh.unwrapped) == pytest.approx(after, rel=1e-9)
    assert fresh.steps_done == 1
    assert len(fresh.trainer.optimizer.state_dict()["state"]) > 0  # AdamW moments restored


def test_full_checkpoint_is_a_loadable_model(tiny_path, tmp_path):
    from transformers import AutoModelForCausalLM

    updater = PolicyUpdater(tiny_path, UpdateConfig(learning_rate=1e-3), output_dir=tmp_path / "out")
    updater.update(random_batch())
    info = updater.save(tmp_path / "ckpt" / "v1", "v1", step=1)
    reloaded = AutoModelForCausalLM.from_pretrained(info.path)
    assert weights_fingerprint(reloaded) == pytest.approx(weights_fingerprint(updater.unwrapped), rel=1e-6)
    assert (Path(info.path) / "tokenizer.json").exists()


def test_kl_to_reference(tiny_path, tmp_path):
    config = UpdateConfig(beta=0.5, learning_rate=5e-2, micro_batch_size=8, epochs=3)
    updater = PolicyUpdater(tiny_path, config, output_dir=tmp_path / "out")
    result = updater.update(random_batch())
    assert updater.trainer.ref_model is not None
    assert result.trl_metrics["kl"] > 0.0  # later epochs moved away from the reference


def test_token_budget_splits_micro_batches_without_changing_the_update(tiny_path, tmp_path):
    from agentlightning.trainer.batch import Sample, micro_batches

    def sample(prompt_len: int, completion_len: int) -> Sample:
        return Sample([1] * prompt_len, [2] * completion_len, 1.0, None)

    samples = [sample(p, 4) for p in (6, 6, 6, 6, 30, 60)]
    assert [len(g) for g in micro_batches(samples, 8)] == [6]
    # padded tokens = rows x (longest prompt + longest response): 4 x 10 fits 40, the 34 and 64 go alone
    assert [[s.length for s in g] for g in micro_batches(samples, 8, max_tokens=40)] == [[10] * 4, [34], [64]]
    assert [len(g) for g in micro_batches(samples, 3, max_tokens=1000)] == [3, 3]  # the sample cap still holds

    # The same batch, one micro-batch of 8 or micro-batches of ~1-2 samples: the same loss and the same step.
    # (Adam's first step is ~lr * sign(gradient), so gradient entries that are ~0 flip with float noise:
    # the steps are compared as vectors, not element by element.)
    batch = random_batch(seed=3)
    steps, losses = [], []
    for i, tokens in enumerate((None, 24)):
        updater = PolicyUpdater(tiny_path, UpdateConfig(learning_rate=1e-2, micro_batch_size=8,
                                                        micro_batch_tokens=tokens), output_dir=tmp_path / str(i))
        before = torch.cat([p.detach().flatten().clone() for p in updater.unwrapped.parameters()])
        result = updater.update(batch)
        assert result.optimizer_steps == 1
        losses.append(result.loss)
        steps.append(torch.cat([p.detach().flatten() for p in updater.unwrapped.parameters()]) - before)
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert torch.nn.functional.cosine_similarity(steps[0], steps[1], dim=0) > 0.999
    with pytest.raises(ValueError, match="micro_batch_tokens"):
        UpdateConfig(micro_batch_tokens=0)
