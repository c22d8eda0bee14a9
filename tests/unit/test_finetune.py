"""Tests of one fine-tuning job on tiny local models and a synthetic benchmark."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lensllm.data.benchmark import Benchmark, Example, write_benchmark
from lensllm.training.finetune import finetune, main
from lensllm.training.loading import ModelLoadError, load_model
from lensllm.training.settings import FinetuneConfig, write_result_json
from lensllm.training.tokens import collate_rows, encode_examples
from lensllm.training.zoo import ModelSpec, pretrain_model, train_tokenizer

WORDS = ["cat", "dog", "bird", "fish", "tree", "stone", "river", "cloud"]
PAIRS = Benchmark(
    name="toy-pairs",
    kind="pairs",
    train=tuple(Example(f"Define {w}{i}.", f"a {w} of kind {i}") for i in range(6) for w in WORDS),
    test=tuple(Example(f"Define {w}{i}.", f"a {w} of kind {i}") for i in range(6, 8) for w in WORDS),
)
LM = Benchmark(
    name="toy-lm",
    kind="lm",
    train=tuple(Example("", f"The {w} number {i} sat by the {WORDS[i % 8]}.") for i in range(4) for w in WORDS),
    test=tuple(Example("", f"The {w} number {i} sat by the {WORDS[i % 8]}.") for i in range(4, 6) for w in WORDS),
)
CONFIG = FinetuneConfig(lr=3e-3, epochs=2, batch_size=8, eval_batch_size=16)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny GPT-2, Llama and T5 models pre-trained for a few steps, saved in local directories."""
    root = tmp_path_factory.mktemp("ft")
    texts = [ex.source + " " + ex.target for ex in PAIRS.train + LM.train]
    train_tokenizer(texts, 300, root / "tokenizer", seed=0)
    paths = {}
    for arch in ("gpt2", "llama", "t5"):
        spec = ModelSpec(f"tiny-{arch}", arch, 32, 1, 2, 64, 2, (("toy", 1.0),), batch_size=4, seq_len=16)
        pretrain_model(spec, root / "tokenizer", {"toy": texts}, root / arch)
        paths[arch] = str(root / arch)
    return paths


@pytest.mark.parametrize("arch", ["gpt2", "llama", "t5"])
def test_local_directory_loads_like_a_hub_name(models, arch):
    loaded = load_model(models[arch])
    assert loaded.is_encoder_decoder == (arch == "t5")
    assert loaded.name == models[arch] and loaded.tokenizer.pad_token == "<pad>"


def test_causal_labels_are_masked_to_the_target(models):
    loaded = load_model(models["gpt2"])
    tok = loaded.tokenizer
    example = Example("Define cat1.", "a cat of kind 1")
    (inputs, labels), = encode_examples([example], loaded, "pairs", CONFIG)
    target = tok(example.target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    prefix = 1 + len(tok(example.source, add_special_tokens=False)["input_ids"]) + len(tok("\n", add_special_tokens=False)["input_ids"])
    assert len(inputs) == len(labels) == prefix + len(target)
    assert labels[:prefix] == [-100] * prefix and labels[prefix:] == target == inputs[prefix:]
    (lm_inputs, lm_labels), = encode_examples([Example("", "The cat sat.")], loaded, "lm", CONFIG)
    assert lm_inputs[0] == tok.bos_token_id and lm_labels == [-100] + lm_inputs[1:]


def test_encoder_decoder_gets_source_and_target(models):
    loaded = load_model(models["t5"])
    tok = loaded.tokenizer
    (inputs, labels), = encode_examples([Example("Define cat1.", "a cat")], loaded, "pairs", CONFIG)
    assert inputs == tok("Define cat1.", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert labels == tok("a cat", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]


def test_truncation_caps_source_and_target(models):
    loaded = load_model(models["llama"])
    config = replace(CONFIG, max_len_source=2, max_len_target=3)
    (inputs, labels), = encode_examples([Example("Define " * 20, "cat " * 20)], loaded, "pairs", config)
    assert sum(label != -100 for label in labels) == 3 + 1  # target tokens + eos


@pytest.mark.parametrize("arch,benchmark", [("gpt2", PAIRS), ("llama", LM), ("t5", PAIRS)])
def test_same_seed_same_loss_and_training_helps(models, arch, benchmark):
    first = finetune(models[arch], benchmark, 32, CONFIG)
    second = finetune(models[arch], benchmark, 32, CONFIG)
    zero = finetune(models[arch], benchmark, 0, CONFIG)
    assert first.test_loss == second.test_loss
    assert first.steps == 2 * 4 and first.tokens_seen > 0 and first.train_loss_final is not None
    assert zero.steps == 0 and zero.tokens_seen == 0 and zero.flops_measured == 0 and zero.train_loss_final is None
    assert zero.flops_per_token_measured > 0 and first.test_loss < zero.test_loss
    assert finetune(models[arch], benchmark, 32, replace(CONFIG, seed=1)).test_loss != first.test_loss
    # The Hessian trace of the training loss, at the pre-trained weights and after fine-tuning.
    assert first.hessian_trace == second.hessian_trace and zero.hessian_trace != first.hessian_trace
    assert zero.hessian_trace_stderr > 0 and zero.hessian_seconds >= 0


def test_zero_shot_is_the_untrained_loss(models):
    import torch

    loaded = load_model(models["gpt2"])
    inputs, labels = zip(*encode_examples(PAIRS.test, loaded, "pairs", CONFIG))
    total, count = 0.0, 0
    with torch.no_grad():
        for ids, lab in zip(inputs, labels):
            logits = loaded.model(input_ids=torch.tensor([ids])).logits[0, :-1]
            target = torch.tensor(lab[1:])
            total += float(torch.nn.functional.cross_entropy(logits, target, ignore_index=-100, reduction="sum"))
            count += int((target != -100).sum())
    result = finetune(models["gpt2"], PAIRS, 0, CONFIG)
    assert result.test_tokens == count
    assert result.test_loss == pytest.approx(total / count, rel=1e-5)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_measured_flops_match_six_n_d_on_a_causal_model(tmp_path, models, arch):
    spec = ModelSpec("wide", arch, 128, 2, 4, 512, 0, (("toy", 1.0),))
    pretrain_model(spec, models[arch], {"toy": ["unused"]}, tmp_path / "wide")  # tokenizer of the tiny model
    config = replace(CONFIG, epochs=1, batch_size=16)
    result = finetune(str(tmp_path / "wide"), LM, 16, config)
    ratio = result.flops_measured / result.flops_analytic
    assert 0.8 <= ratio <= 1.2, ratio
    # One batch of all 16 examples, padded to the longest: its positions are the tokens seen.
    rows = encode_examples(LM.train[:16], load_model(str(tmp_path / "wide")), "lm", config)
    assert result.tokens_seen == 16 * max(len(inputs) for inputs, _ in rows)


DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"


def _zoo_model(spec, vocab_size):
    """An untrained model of a zoo spec (FLOPs do not depend on the weights), with `vocab_size` tokens."""
    from transformers import AutoModelForCausalLM, T5ForConditionalGeneration

    from lensllm.training.zoo import build_config

    class Vocabulary:
        pad_token_id, bos_token_id, eos_token_id = 0, 1, 2

        def __len__(self):
            return vocab_size

    config = build_config(spec, Vocabulary())
    return T5ForConditionalGeneration(config) if spec.architecture == "t5" else AutoModelForCausalLM.from_config(config)


def _rows(encoder_decoder, source, target):
    """Four equal rows: `source` encoder positions and `target` decoder positions (T5), or one
    causal sequence of `source` unlabelled then `target` labelled positions."""
    if encoder_decoder:
        return [(list(range(3, 3 + source)), list(range(3, 3 + target)))] * 4
    return [(list(range(3, 3 + source + target)), [-100] * source + list(range(3, 3 + target)))] * 4


def _default_zoo():
    import yaml

    from tests.unit.test_zoo import read_zoo_specs

    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    return read_zoo_specs(DEFAULT_CONFIG.parent.parent / config["zoo"]), config


@pytest.mark.parametrize("source, target", [(49, 9), (1, 65)])
def test_measured_flops_are_the_matrix_products_of_the_default_zoo(source, target):
    """FlopCounterMode's count per token position, against the FLOPs of the matrix products by hand
    (2 m n k each, x3 for forward and backward): every weight matrix once per position it sees
    (biases and norms do no matrix product), the output head V x d, and attention's Q K^T and A V,
    12 d T per position and layer for T positions (T5: encoder S x S, decoder T x T, cross T x S)."""
    from lensllm.training.flops import measure_flops_per_token

    zoo, config = _default_zoo()
    vocab = config["pretraining"]["vocab_size"]
    for spec in zoo:
        d, layers, ff = spec.d_model, spec.n_layers, spec.d_ff
        t5 = spec.architecture == "t5"
        model = _zoo_model(spec, vocab)
        if t5:  # encoder layer: self-attention + FF; decoder layer: self-attention, cross-attention, FF
            total = (6 * (source * layers * (4 * d * d + 2 * d * ff) + target * layers * (6 * d * d + 2 * d * ff)
                          + source * layers * 2 * d * d + target * vocab * d)
                     + 12 * d * layers * (source * source + target * target + target * source))
            expected = total / (source + target)
        else:
            mlp = (2 if spec.architecture == "gpt2" else 3) * d * ff  # Llama's MLP is gated
            expected = 6 * (layers * (4 * d * d + mlp) + vocab * d) + 12 * layers * (source + target) * d
        measured = measure_flops_per_token(model, [collate_rows(_rows(t5, source, target), 0)], t5)
        assert measured == pytest.approx(expected, rel=1e-12), spec.name


def test_measured_over_analytic_flops_is_in_the_documented_range():
    """docs/grid.md: measured / analytic = 1.04-1.16 for the causal models of the default zoo and 0.47-0.62
    for its T5, over the sequences of the default length caps (max_len_source 48, max_len_target 64):
    an lm benchmark at the cap, and pairs with the source at the cap and 8 to 64 target tokens."""
    from lensllm.training.flops import matmul_params, measure_flops_per_token

    zoo, config = _default_zoo()
    src, tgt = config["finetune"]["max_len_source"], config["finetune"]["max_len_target"]
    ratios = {"causal": [], "t5": []}
    for spec in zoo:
        t5 = spec.architecture == "t5"
        model = _zoo_model(spec, config["pretraining"]["vocab_size"])
        # causal: bos + source + separator | target + eos; T5: source + eos | target + eos
        shapes = [(1, tgt + 1)] + [(src + (1 if t5 else 2), n + 1) for n in (8, tgt)]
        for source, target in shapes:
            measured = measure_flops_per_token(model, [collate_rows(_rows(t5, source, target), 0)], t5)
            ratios["t5" if t5 else "causal"].append(measured / (6 * matmul_params(model)))
    assert 1.04 <= min(ratios["causal"]) and max(ratios["causal"]) <= 1.16, ratios["causal"]
    assert 0.47 <= min(ratios["t5"]) and max(ratios["t5"]) <= 0.62, ratios["t5"]


def test_unknown_model_is_named(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ModelLoadError, match="no-such-model"):
        load_model(missing)


def test_tokenizer_without_pad_token_is_named(tmp_path, models):
    import shutil

    from transformers import AutoTokenizer

    nopad = tmp_path / "nopad"
    shutil.copytree(models["gpt2"], nopad)
    tokenizer = AutoTokenizer.from_pretrained(nopad)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(nopad)
    with pytest.raises(ModelLoadError, match="my-model.*no pad token"):
        load_model(str(nopad), name="my-model")
    loaded = load_model(str(nopad), pad_token="eos")
    assert loaded.tokenizer.pad_token == loaded.tokenizer.eos_token


def test_cli_rejects_a_size_larger_than_the_train_split(tmp_path, models, capsys):
    bench = tmp_path / "toy.jsonl"
    write_benchmark(PAIRS, bench)
    with pytest.raises(SystemExit):
        main(["--model", models["gpt2"], "--benchmark", str(bench), "--size", "1000", "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert "toy-pairs" in err and "1000" in err
    assert not (tmp_path / "r.json").exists()


def test_cli_writes_the_result_json(tmp_path, models):
    bench = tmp_path / "toy.jsonl"
    write_benchmark(PAIRS, bench)
    outs = [tmp_path / "r0.json", tmp_path / "r8.json"]
    assert main(["--model", models["llama"], "--model-name", "tiny-llama", "--benchmark", str(bench),
                 "--size", "0", "8", "--out", *map(str, outs), "--epochs", "1"]) == 0
    record = json.loads(outs[1].read_text())
    keys = {"model", "model_path", "benchmark", "size", "seed", "test_loss", "train_loss_final", "steps", "tokens_seen",
            "n_params", "flops_measured", "flops_analytic", "flops_per_token_measured", "wall_seconds", "config", "versions"}
    assert keys <= set(record)
    assert (record["model"], record["benchmark"], record["size"]) == ("tiny-llama", "toy-pairs", 8)
    assert set(record["versions"]) == {"python", "torch", "transformers"} and record["config"]["epochs"] == 1
    assert json.loads(outs[0].read_text())["steps"] == 0
    assert record["hessian_trace"] is not None and record["config"]["hessian_probes"] == 8
    assert main(["--model", models["llama"], "--benchmark", str(bench), "--size", "0", "--out", str(outs[0]),
                 "--hessian-probes", "0"]) == 0
    assert json.loads(outs[0].read_text())["hessian_trace"] is None


def test_result_json_is_atomic(tmp_path, models):
    result = finetune(models["gpt2"], PAIRS, 0, CONFIG)
    path = tmp_path / "out.json"
    write_result_json(result, path)
    before = path.read_text()
    broken = replace(result, config={"bad": object()})  # not JSON-serialisable: fails mid-write
    with pytest.raises(TypeError):
        write_result_json(broken, path)
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["out.json"]


# --- device, precision, micro-batches, LoRA (issue 12: the GPU path, tested on the CPU) ------------

FAST = replace(CONFIG, epochs=1, batch_size=16, hessian_probes=0, bound_batches=0)


@pytest.mark.parametrize("arch", ["gpt2", "t5"])
def test_micro_batches_give_the_same_losses_as_one_batch(models, arch):
    whole = finetune(models[arch], PAIRS, 32, replace(FAST, device="cpu"))
    split = finetune(models[arch], PAIRS, 32, replace(FAST, device="cpu", micro_batch_size=4))
    assert (whole.micro_batch_size, split.micro_batch_size, whole.steps, split.steps) == (16, 4, 2, 2)
    assert split.train_loss_final == pytest.approx(whole.train_loss_final, rel=1e-5)
    assert split.test_loss == pytest.approx(whole.test_loss, rel=1e-5)
    assert (whole.device, whole.precision, whole.gpu_name, whole.method) == ("cpu", "fp32", None, "full")


def test_out_of_memory_halves_the_micro_batch(models, monkeypatch):
    import torch

    import lensllm.training.finetune as ft
    import lensllm.training.flops as flops

    fixed = finetune(models["gpt2"], PAIRS, 32, replace(FAST, micro_batch_size=4))
    real = ft.token_loss

    def small_memory(model, batch, encoder_decoder):
        if torch.is_grad_enabled() and batch["input_ids"].shape[0] > 4:  # the FLOP probe and the steps
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, batch, encoder_decoder)

    monkeypatch.setattr(ft, "token_loss", small_memory)  # the steps
    monkeypatch.setattr(flops, "token_loss", small_memory)  # the FLOP probe
    auto = finetune(models["gpt2"], PAIRS, 32, FAST)
    assert auto.micro_batch_size == 4 and auto.test_loss == fixed.test_loss
    assert auto.flops_measured == fixed.flops_measured
    with pytest.raises(torch.OutOfMemoryError):  # a micro-batch given by the user is kept
        finetune(models["gpt2"], PAIRS, 32, replace(FAST, micro_batch_size=8))


def test_bf16_autocast_on_the_cpu_trains_fp32_master_weights(models):
    fp32 = finetune(models["llama"], LM, 16, FAST)
    bf16 = finetune(models["llama"], LM, 16, replace(FAST, device="cpu", precision="bf16"))
    assert bf16.precision == "bf16" and bf16.config["precision"] == "bf16"
    assert bf16.test_loss == pytest.approx(fp32.test_loss, rel=0.05) and bf16.test_loss != fp32.test_loss
    assert bf16.flops_per_token_measured == pytest.approx(fp32.flops_per_token_measured, rel=1e-6)
    curvature = finetune(models["llama"], LM, 0, replace(FAST, precision="bf16", hessian_probes=2))
    assert curvature.hessian_trace is not None and abs(curvature.hessian_trace) > 0


def test_lora_trains_only_the_adapters(models):
    full = finetune(models["gpt2"], PAIRS, 32, FAST)
    zero = finetune(models["gpt2"], PAIRS, 0, FAST)
    lora = finetune(models["gpt2"], PAIRS, 32, replace(FAST, method="lora", lora_rank=4, lora_alpha=8, lr=1e-2))
    assert lora.method == "lora" and lora.n_params == full.n_params == full.n_params_trainable
    assert 0 < lora.n_params_trainable < full.n_params / 5
    assert lora.test_loss < zero.test_loss  # the adapters learn
    # No weight gradients of the frozen matrices: fewer measured FLOPs per token, 4N analytically.
    assert lora.flops_per_token_measured < full.flops_per_token_measured
    assert lora.flops_analytic == pytest.approx(full.flops_analytic * 4 / 6 * lora.tokens_seen / full.tokens_seen)
    t5 = finetune(models["t5"], PAIRS, 16, replace(FAST, method="lora", lora_target_modules=("q", "v"), bound_batches=1))
    assert 0 < t5.n_params_trainable < t5.n_params / 5
    # The bound's Hessian distance is taken over the trained matrices only: the adapters.
    assert t5.hessian_distance_per_matrix and all("lora_" in name for name in t5.hessian_distance_per_matrix)
    assert t5.train_loss_max >= t5.train_loss > 0 and t5.hessian_distance_batches == 1


def test_bad_settings_are_named_before_training(models, monkeypatch):
    import torch

    from lensllm.training.settings import JobConfigError

    with pytest.raises(JobConfigError, match=r"finetune\.lora_target_modules: \['nothing_here'\] match no module.*c_attn"):
        finetune(models["gpt2"], PAIRS, 16, replace(FAST, method="lora", lora_target_modules=("nothing_here",)))
    with pytest.raises(JobConfigError, match=r"finetune\.precision: 'fp16'"):
        finetune(models["gpt2"], PAIRS, 16, replace(FAST, precision="fp16"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(JobConfigError, match=r"finetune\.device: 'cuda' asked but torch sees no CUDA device"):
        finetune(models["gpt2"], PAIRS, 16, replace(FAST, device="cuda"))
    with pytest.raises(ValueError, match=r"finetune\.device"):
        FinetuneConfig(device="gpu")
    with pytest.raises(ValueError, match=r"finetune\.micro_batch_size"):
        FinetuneConfig(batch_size=8, micro_batch_size=16)
    with pytest.raises(ValueError, match=r"finetune\.method"):
        FinetuneConfig(method="qlora")
    with pytest.raises(ValueError, match=r"finetune\.bound_batches: must be >= 0"):
        FinetuneConfig(bound_batches=-1)


def test_cli_names_a_device_it_cannot_use(tmp_path, models, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    bench = tmp_path / "toy.jsonl"
    write_benchmark(PAIRS, bench)
    common = ["--model", models["gpt2"], "--benchmark", str(bench), "--size", "8", "--out", str(tmp_path / "r.json")]
    with pytest.raises(SystemExit) as stopped:
        main([*common, "--device", "cuda"])
    assert stopped.value.code == 2
    assert "finetune.device: 'cuda' asked but torch sees no CUDA device" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        main([*common, "--precision", "fp16"])
    assert stopped.value.code == 2
    assert "finetune.precision: 'fp16'" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


# --- on a CUDA GPU (skipped here; benchmarks/gpu_check.sh runs them: pytest -m gpu) -----------------

def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


needs_cuda = pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh)")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("arch", ["gpt2", "t5"])
def test_cuda_precisions_match_the_cpu(models, arch):
    cpu = finetune(models[arch], PAIRS, 32, FAST)
    for precision in ("fp32", "bf16", "fp16"):
        gpu = finetune(models[arch], PAIRS, 32, replace(FAST, device="cuda", precision=precision))
        assert (gpu.device, gpu.precision) == ("cuda", precision) and gpu.gpu_name
        assert gpu.test_loss == pytest.approx(cpu.test_loss, rel=1e-4 if precision == "fp32" else 0.05)
        assert gpu.flops_per_token_measured == pytest.approx(cpu.flops_per_token_measured, rel=0.05)
    micro = finetune(models[arch], PAIRS, 32, replace(FAST, device="cuda", micro_batch_size=4))
    assert micro.test_loss == pytest.approx(cpu.test_loss, rel=1e-4)


@pytest.mark.gpu
@needs_cuda
def test_cuda_lora_hessian_and_energy(models):
    lora = finetune(models["llama"], LM, 16, replace(FAST, device="cuda", precision="bf16", method="lora",
                                                      hessian_probes=2))
    assert lora.device == "cuda" and 0 < lora.n_params_trainable < lora.n_params and lora.hessian_trace is not None
    try:
        import pynvml  # noqa: F401
    except ImportError:
        pytest.skip("pynvml (nvidia-ml-py) is not installed: no NVML energy reading to check")
    assert lora.energy_gpu_joules is not None and lora.energy_gpu_joules > 0


@pytest.mark.gpu
@needs_cuda
def test_cuda_ntk_matches_the_cpu(models):
    import numpy as np

    from lensllm.probes.ntk import compute_ntk

    cpu = compute_ntk(models["gpt2"], PAIRS, eta=1e-3, n_probes=8, device="cpu")
    gpu = compute_ntk(models["gpt2"], PAIRS, eta=1e-3, n_probes=8, device="cuda")
    assert gpu.device == "cuda"
    assert np.allclose(gpu.eigenvalues, cpu.eigenvalues, rtol=1e-3, atol=1e-6 * max(cpu.eigenvalues))


def test_a_float16_checkpoint_is_loaded_as_fp32_master_weights(tmp_path, models):
    import torch

    loaded = load_model(models["gpt2"])
    loaded.model.half().save_pretrained(tmp_path / "half")  # like the OPT family's checkpoints
    loaded.tokenizer.save_pretrained(tmp_path / "half")
    assert all(p.dtype == torch.float32 for p in load_model(str(tmp_path / "half")).model.parameters())
