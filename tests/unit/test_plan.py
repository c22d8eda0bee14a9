"""Tests of the FLOPs-budget plan: the choice of the budget, its errors, and the counts it rests on."""

from __future__ import annotations

import json

import pytest

from lensllm.data.benchmark import Benchmark, Example, write_benchmark
from lensllm.training.flops import matmul_params
from lensllm.training.loading import load_model
from lensllm.training.settings import FinetuneConfig
from lensllm.training.tokens import encode_examples
from lensllm.training.plan import (
    CandidateCost,
    PlanError,
    count_parameters,
    main,
    measure_candidate,
    plan_selection,
    plan_summary,
    read_plan,
    write_plan,
)

WORDS = ["cat", "dog", "bird", "fish", "tree", "stone", "river", "cloud"]
PAIRS = Benchmark(
    name="toy-pairs",
    kind="pairs",
    train=tuple(Example(f"Define {w}{i} please.", f"a {w} of kind {i} " * (1 + i % 3))
                for i in range(4) for w in WORDS),
    test=tuple(Example(f"Define {w}{i}.", f"a {w} of kind {i}") for i in range(4, 5) for w in WORDS),
)
# Two candidates of 1000 parameters and 10 tokens per example: 6 * 1000 * 10 = 60,000 FLOPs an example.
COSTS = [CandidateCost("a", 1200, 1000, 10.0), CandidateCost("b", 1000, 1000, 10.0)]
SIZES = [1, 2, 4, 8]


@pytest.mark.parametrize(
    "flops_budget, budget, total",
    [
        (1e6, 4, 2 * 60_000 * 7),  # 8.4e5 <= 1e6 < 1.8e6 (the cost up to 8)
        (8.4e5, 4, 8.4e5),  # exactly the cost up to 4 is enough
        (8.3e5, 2, 2 * 60_000 * 3),
        (1e9, 8, 2 * 60_000 * 15),  # the largest size offered
    ],
)
def test_the_budget_is_the_largest_size_whose_fine_tunes_fit(flops_budget, budget, total):
    plan = plan_selection(COSTS, SIZES, 1, flops_budget, "toy")
    assert plan.budget == budget and plan.sizes == tuple(s for s in SIZES if s <= budget)
    assert plan.total_flops == pytest.approx(total)
    assert plan.flops["a"][4] == pytest.approx(6 * 1000 * 10 * 4) and plan.candidate_sizes == tuple(SIZES)
    assert plan.cumulative_flops(budget) == pytest.approx(total)


def test_epochs_and_unsorted_sizes():
    plan = plan_selection(COSTS, [8, 2, 1, 4], 3, 3 * 8.4e5, "toy")
    assert plan.budget == 4 and plan.sizes == (1, 2, 4) and plan.flops["b"][1] == pytest.approx(3 * 60_000)


def test_a_budget_below_the_two_smallest_sizes_is_an_error_naming_the_key_and_their_cost():
    with pytest.raises(PlanError) as err:
        plan_selection(COSTS, SIZES, 1, 3.5e5, "toy")
    message = str(err.value)
    assert "key 'select.flops_budget' (3.5e+05 FLOPs) is too small for toy" in message
    assert "the two smallest sizes [1, 2] costs about 3.6e+05 FLOPs" in message
    with pytest.raises(PlanError, match="positive"):
        plan_selection(COSTS, SIZES, 1, 0.0)
    with pytest.raises(PlanError, match="at least two training sizes"):
        plan_selection(COSTS, [8], 1, 1e9)


def test_full_size_must_exceed_the_chosen_budget():
    with pytest.raises(PlanError, match=r"key 'select.full_size' \(8\) must be larger than the budget 8"):
        plan_selection(COSTS, SIZES, 1, 1e9, "toy", full_size=8)
    assert plan_selection(COSTS, SIZES, 1, 1e6, "toy", full_size=8).budget == 4


def test_the_plan_round_trips_through_its_json_and_says_what_it_bought(tmp_path):
    plan = plan_selection(COSTS, SIZES, 2, 2e6, "toy")
    write_plan(plan, tmp_path / "plan.json")
    assert read_plan(tmp_path / "plan.json") == plan
    data = json.loads((tmp_path / "plan.json").read_text())
    assert data["budget"] == 4 and data["sizes"] == [1, 2, 4] and data["flops"]["a"]["8"] == pytest.approx(960_000)
    summary = plan_summary(plan)
    assert "at 1, 2, 4 examples (budget 4; the next size, 8, would have cost about 3.60e+06 in all)" in summary


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tied GPT-2, an untied Llama and a T5, untrained, saved with save_pretrained beside a tokenizer."""
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, T5Config, T5ForConditionalGeneration

    from lensllm.training.zoo import train_tokenizer

    root = tmp_path_factory.mktemp("plan")
    texts = [ex.source + " " + ex.target for ex in PAIRS.train]
    tokenizer = train_tokenizer(texts, 300, root / "tokenizer", seed=0)
    ids = dict(vocab_size=len(tokenizer), pad_token_id=0, bos_token_id=1, eos_token_id=2)
    configs = {
        "gpt2": GPT2Config(n_embd=32, n_layer=2, n_head=2, n_inner=64, n_positions=128, **ids),
        "llama": LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
                             max_position_embeddings=128, tie_word_embeddings=False, **ids),
        "t5": T5Config(d_model=32, d_kv=16, num_heads=2, num_layers=2, num_decoder_layers=1, d_ff=64,
                       decoder_start_token_id=0, **ids),
    }
    paths = {}
    for arch, config in configs.items():
        model = T5ForConditionalGeneration(config) if arch == "t5" else AutoModelForCausalLM.from_config(config)
        model.save_pretrained(root / arch)
        tokenizer.save_pretrained(root / arch)
        paths[arch] = str(root / arch)
    return paths


@pytest.mark.parametrize("arch", ["gpt2", "llama", "t5"])
def test_parameters_are_counted_on_the_meta_device_as_the_loaded_model_has_them(tiny_models, arch):
    model = load_model(tiny_models[arch]).model
    n_params, n_matmul, n_encoder = count_parameters(tiny_models[arch])
    assert n_params == sum(p.numel() for p in model.parameters())
    assert n_matmul == matmul_params(model)
    if arch == "llama":  # untied: the input embedding takes part in no matrix product
        assert n_matmul == n_params - model.get_input_embeddings().weight.numel()
    if arch == "t5":
        import torch

        tables = {id(p) for m in model.encoder.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
        assert tables and n_encoder == sum(p.numel() for p in model.encoder.parameters() if id(p) not in tables)
        assert 0 < n_encoder < n_matmul
    else:
        assert n_encoder is None


@pytest.mark.parametrize("arch", ["gpt2", "t5"])
def test_tokens_per_example_bound_the_padded_positions_of_the_fine_tuning_encoding(tiny_models, arch):
    config = FinetuneConfig(max_len_source=4, max_len_target=6)
    cost = measure_candidate(arch, tiny_models[arch], PAIRS, 16, 4, 6)
    rows = encode_examples(PAIRS.train[:16], load_model(tiny_models[arch]), "pairs", config)
    inputs = max(len(i) for i, _ in rows)  # a padded batch costs its longest row's positions per row
    if arch == "gpt2":
        assert cost.tokens_per_example == pytest.approx(inputs)
    else:  # encoder parameters see the source, decoder parameters the target
        _, n_matmul, n_encoder = count_parameters(tiny_models[arch])
        targets = max(len(t) for _, t in rows)
        weighted = (n_encoder * inputs + (n_matmul - n_encoder) * targets) / n_matmul
        assert cost.tokens_per_example == pytest.approx(weighted)
        assert min(inputs, targets) <= cost.tokens_per_example <= max(inputs, targets)


def test_the_command_line_writes_the_same_plan_twice_and_reports_a_budget_too_small(tiny_models, tmp_path, capsys):
    write_benchmark(PAIRS, tmp_path / "toy.jsonl")
    args = ["--sizes", "4", "8", "16", "32", "--epochs", "2", "--max-len-source", "8", "--max-len-target", "8",
            "--benchmark", str(tmp_path / "toy.jsonl"), "--model", f"g={tiny_models['gpt2']}",
            f"t={tiny_models['t5']}", "--full-size", "100"]
    costs = [measure_candidate(n, tiny_models[a], PAIRS, 32, 8, 8) for n, a in (("g", "gpt2"), ("t", "t5"))]
    cost_to_16 = sum(c.finetune_flops(s, 2) for c in costs for s in (4, 8, 16))
    for out in ("one.json", "two.json"):
        assert main(["--flops-budget", str(cost_to_16 * 1.01), *args, "--out", str(tmp_path / out)]) == 0
    assert (tmp_path / "one.json").read_bytes() == (tmp_path / "two.json").read_bytes()
    plan = read_plan(tmp_path / "one.json")
    assert plan.budget == 16 and plan.sizes == (4, 8, 16) and plan.total_flops == pytest.approx(cost_to_16)
    with pytest.raises(SystemExit) as stopped:
        main(["--flops-budget", "1000", *args, "--out", str(tmp_path / "small.json")])
    assert stopped.value.code == 2
    assert "key 'select.flops_budget' (1e+03 FLOPs) is too small for toy-pairs" in capsys.readouterr().err
    assert not (tmp_path / "small.json").exists()


@pytest.mark.parametrize("arch", ["gpt2", "llama", "t5"])
def test_the_estimate_bounds_the_flops_a_real_fine_tune_measures(tiny_models, arch):
    # The jobs charge FlopCounterMode's count (matrix products, attention included, on padded
    # batches); the plan must not promise less. The bound is tight when lengths are even.
    from lensllm.training.finetune import finetune

    config = FinetuneConfig(max_len_source=8, max_len_target=8, epochs=2, batch_size=4, hessian_probes=0)
    cost = measure_candidate(arch, tiny_models[arch], PAIRS, 16, 8, 8)
    result = finetune(tiny_models[arch], PAIRS, 16, config)
    bound = cost.finetune_flops(16, 2)
    assert 0.5 * bound <= result.flops_measured <= bound
