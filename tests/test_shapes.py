"""Shape recipes (planner.shapes) and hyperparameter laws (planner.hparams): 20 sizes from 10M to 100B within
2% in hardware-friendly dimensions, the published families' counts reproduced, and DeepSeek LLM's and Step
Law's formulas evaluated independently here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.errors import PlannerError
from planner.hparams import hyperparameters_for, law_inputs, round_batch
from planner.shapes import ffn_width, shape_for

SIZES = np.logspace(7, 11, 20)  # 10M .. 100B, log-spaced


def check_dimensions(shape, recipe):
    assert shape.d_model % 128 == 0 and shape.d_model % 64 == 0
    assert shape.d_model % shape.n_heads == 0 and shape.d_model // shape.n_heads == recipe.head_dim.value
    assert shape.n_heads % shape.n_kv_heads == 0
    assert shape.ffn % int(recipe.ffn_multiple.value) == 0
    assert shape.n_layers >= 1


@pytest.mark.parametrize("name", ["llama-2", "pythia"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{n:.3g}" for n in SIZES])
def test_twenty_sizes_from_10m_to_100b_are_within_two_percent(catalog, name, size):
    recipe = catalog.recipe(name)
    shape = shape_for(size, recipe, "non-embedding")
    check_dimensions(shape, recipe)
    # the count is recomputed here from the dimensions, not read from the result
    arch = recipe.architecture(shape.n_layers, shape.d_model)
    assert shape.non_embedding_params == arch.non_embedding_params()
    assert abs(arch.non_embedding_params() / size - 1) <= 0.02
    assert shape.relative_error == pytest.approx(arch.non_embedding_params() / size - 1)


@settings(max_examples=40, deadline=None)
@given(log_n=st.floats(7.0, 11.0), name=st.sampled_from(["llama-2", "pythia"]))
def test_any_size_from_10m_to_100b_is_within_two_percent(catalog, log_n, name):
    recipe = catalog.recipe(name)
    target = 10.0**log_n
    shape = shape_for(target, recipe)
    check_dimensions(shape, recipe)
    assert abs(shape.non_embedding_params / target - 1) <= 0.02


def exhaustive(recipe, target, counted="non-embedding", tolerance=0.02):
    """Every layer count up to 16 × the recipe's and every width multiple: the within-tolerance shape nearest the
    recipe's aspect ratio (then the nearer count), by brute force."""
    step = recipe.width_step
    ideal = (target / (12 * recipe.aspect_ratio.value**2)) ** (1 / 3)
    found = []
    for layers in range(1, math.ceil(16 * max(ideal, 1)) + 3):
        for k in range(1, 10**6):
            arch = recipe.architecture(layers, k * step, validate=False)
            n = arch.params() if counted == "total" else arch.non_embedding_params()
            if n > target * (1 + tolerance):
                break
            if n >= target * (1 - tolerance):
                found.append((round(abs(math.log(k * step / layers / recipe.aspect_ratio.value)), 12), abs(n / target - 1),
                              layers, k * step))
    return min(found)[2:] if found else None


@settings(max_examples=15, deadline=None)
@given(log_n=st.floats(7.0, 9.5), name=st.sampled_from(["llama-2", "llama-3", "pythia"]))
def test_the_search_finds_what_brute_force_finds(catalog, log_n, name):
    """The search stops early in each direction of depth; brute force over every shape agrees with it."""
    recipe = catalog.recipe(name)
    expected = exhaustive(recipe, 10.0**log_n)
    if expected is None:
        with pytest.raises(PlannerError):
            shape_for(10.0**log_n, recipe)
    else:
        shape = shape_for(10.0**log_n, recipe)
        assert (shape.n_layers, shape.d_model) == expected


@pytest.mark.parametrize("size", [1e9, 7e9, 7e10])
def test_large_shapes_keep_the_recipe_aspect_ratio(catalog, size):
    for name in ("llama-2", "llama-3", "pythia"):
        recipe = catalog.recipe(name)
        shape = shape_for(size, recipe)
        assert abs(math.log(shape.aspect_ratio / recipe.aspect_ratio.value)) < math.log(1.25), (name, shape)


def test_total_counting_includes_embeddings(catalog):
    recipe = catalog.recipe("llama-2")
    shape = shape_for(1e9, recipe, "total")
    assert abs(shape.params / 1e9 - 1) <= 0.02 and shape.counted == "total"
    assert shape.params - shape.non_embedding_params >= 2 * 32000 * shape.d_model  # untied input and output


@pytest.mark.parametrize("model", ["pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b", "pythia-1.4b", "pythia-2.8b",
                                   "pythia-6.9b", "pythia-12b"])
def test_the_pythia_recipe_counts_pythia_as_published(catalog, model):
    """The recipe's architecture (MLP rule, biases, LayerNorm, untied embeddings) at Pythia's depth and width
    reproduces Biderman et al. 2023 Table 1's counts exactly at Pythia's vocabulary, and within 0.1% at the
    recipe's 50,304 (6.9B and 12B pad theirs a little more)."""
    entry = catalog.model(model)
    arch = catalog.recipe("pythia").architecture(entry.shape.layers, entry.shape.d_model)
    assert arch.ffn == entry.shape.ffn
    assert arch.model_copy(update={"vocab": entry.shape.vocab}).params() == entry.published_params.value
    assert arch.params() == pytest.approx(entry.published_params.value, rel=1e-3)


@pytest.mark.parametrize("recipe, model", [("llama-2", "llama-2-7b"), ("llama-2", "llama-2-13b"), ("llama-3", "llama-3-8b")])
def test_the_llama_recipes_reproduce_llama(catalog, recipe, model):
    """Llama's MLP rounding (8/3 · d up to 256; Llama 3: × 1.3 up to 1024) gives the released widths, and so the
    exact published counts; the search, asked for that count, lands on the released shape."""
    entry = catalog.model(model)
    rec = catalog.recipe(recipe)
    arch = rec.architecture(entry.shape.layers, entry.shape.d_model)
    assert (arch.ffn, arch.kv_heads) == (entry.shape.ffn, entry.shape.kv_heads)
    assert arch.params() == entry.published_params.value
    found = shape_for(entry.published_params.value, rec, "total", tolerance=1e-9)
    assert (found.n_layers, found.d_model, found.relative_error) == (entry.shape.layers, entry.shape.d_model, 0.0)


def test_llama_mlp_rounding():
    assert ffn_width(4096, 8 / 3, 256) == 11008
    assert ffn_width(3072, 8 / 3, 256) == 8192  # exactly a multiple: not rounded up past it


def test_flops_per_token_counts_every_matmul_and_attention(catalog):
    shape = shape_for(7e9, catalog.recipe("llama-2"))
    L, h, s = shape.n_layers, shape.d_model, 4096
    expected = 6 * (shape.non_embedding_params + shape.vocab * h) + 12 * L * h * s
    assert shape.flops_per_token(s) == pytest.approx(expected, rel=1e-12)
    assert shape.non_embedding_flops_per_token(s) == pytest.approx(6 * shape.non_embedding_params + 12 * L * h * s, rel=1e-12)


def test_impossible_sizes_are_a_clear_error(catalog):
    with pytest.raises(PlannerError, match=r"no llama-3 shape has 1e\+07 non-embedding parameters within 2%; the nearest") as exc:
        shape_for(1e7, catalog.recipe("llama-3"))
    assert exc.value.field == ("params",)
    with pytest.raises(PlannerError, match="count non-embedding parameters"):
        shape_for(2e7, catalog.recipe("llama-3"), "total")


# --- hyperparameter laws ---------------------------------------------------------------------------


def test_deepseek_7b_at_1_4e23_flops_matches_the_formula(catalog):
    """DeepSeek LLM (arXiv 2401.02954) §3.1: eta_opt = 0.3118 C^-0.1250, B_opt = 0.2920 C^0.3271 tokens."""
    law = catalog.hparam_law("deepseek-2024-hparams")
    flops, seq = 1.4e23, 4096
    tokens = flops / (6 * 7e9)
    hp = hyperparameters_for(law, 7e9, tokens, flops, seq)
    lr = 0.3118 * flops**-0.1250
    batch_tokens = 0.2920 * flops**0.3271
    assert hp.lr == pytest.approx(lr, rel=1e-12) and hp.lr == pytest.approx(3.987e-4, rel=1e-3)
    assert hp.law_batch_tokens == pytest.approx(batch_tokens, rel=1e-12)
    assert hp.batch_size % 8 == 0 and abs(hp.batch_size - batch_tokens / seq) <= 4  # the nearest multiple of 8
    assert hp.batch_tokens == hp.batch_size * seq
    assert hp.steps == math.ceil(tokens / hp.batch_tokens)
    assert hp.warmup == 2000
    assert [w.topic for w in hp.warnings] == ["hparams.range"]  # fitted on 1e17 to 2e19


def test_step_law_matches_the_formula(catalog):
    """Li et al. 2025 (arXiv 2503.04715): eta = 1.79 N^-0.713 D^0.307, B = 0.58 D^0.571 tokens."""
    law = catalog.hparam_law("step-law-2025")
    hp = hyperparameters_for(law, 1e9, 1e11, None, 2048)
    assert hp.lr == pytest.approx(1.79 * 1e9**-0.713 * 1e11**0.307, rel=1e-12)
    assert hp.law_batch_tokens == pytest.approx(0.58 * 1e11**0.571, rel=1e-12)


def test_deepseek_compute_is_non_embedding_flops_of_the_shape(catalog):
    law = catalog.hparam_law("deepseek-2024-hparams")
    shape = shape_for(1e9, catalog.recipe("llama-2"), "total")
    n, c = law_inputs(law, 1e9, 2e10, 4096, shape)
    L, h = shape.n_layers, shape.d_model
    assert n == shape.non_embedding_params
    assert c == pytest.approx((6 * shape.non_embedding_params + 12 * L * h * 4096) * 2e10, rel=1e-12)


def test_given_values_win_over_the_law(catalog):
    law = catalog.hparam_law("deepseek-2024-hparams")
    hp = hyperparameters_for(law, 1e8, 2e9, 1e18, 4096, lr=1e-3, batch_size=64, warmup=100)
    assert (hp.lr, hp.batch_size, hp.batch_tokens, hp.warmup) == (1e-3, 64, 64 * 4096, 100)
    assert hp.steps == math.ceil(2e9 / (64 * 4096)) and hp.overridden == ("lr", "batch_size", "warmup")
    assert hp.law_lr == pytest.approx(0.3118 * 1e18**-0.125)
    with pytest.raises(PlannerError, match="without a hyperparameter law, give batch_size, warmup"):
        hyperparameters_for(None, 1e8, 2e9, None, 4096, lr=1e-3)


def test_a_long_warmup_is_capped_and_warned(catalog):
    hp = hyperparameters_for(catalog.hparam_law("deepseek-2024-hparams"), 1e7, 2e8, 1.2e16, 4096)
    assert hp.warmup <= hp.steps and any(w.topic == "hparams.warmup" for w in hp.warnings)


@pytest.mark.parametrize("sequences, multiple, expected", [(26.0, 8, 24), (29.0, 8, 32), (3.0, 8, 8), (2655.3, 8, 2656)])
def test_batch_rounds_to_the_nearest_multiple_in_ratio(sequences, multiple, expected):
    assert round_batch(sequences, multiple) == expected


# --- planner plan --shape --hparams ----------------------------------------------------------------


def test_plan_prints_the_shape_and_hyperparameters(capsys):
    import json

    from cli_helpers import run

    code, out, err = run(["plan", "--params", "7e9", "--tokens", "3.33e12", "--shape", "llama-2", "--hparams",
                          "deepseek-2024-hparams", "--format", "json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    shape, hp = result["shape"], result["hyperparameters"]
    assert shape["recipe"] == "llama-2" and shape["counted"] == "total"  # epoch-2024, the default law, counts totals
    assert abs(shape["params"] / 7e9 - 1) <= 0.02 and shape["d_model"] % 128 == 0
    L, h, s = shape["n_layers"], shape["d_model"], 4096
    c = (6 * shape["non_embedding_params"] + 12 * L * h * s) * 3.33e12
    assert hp["lr"] == pytest.approx(0.3118 * c**-0.125, rel=1e-9)
    assert hp["batch_tokens"] == hp["batch_size"] * s and hp["steps"] == math.ceil(3.33e12 / hp["batch_tokens"])
    code, out, err = run(["plan", "--params", "7e9", "--tokens", "3.33e12", "--shape", "llama-2"], capsys)
    assert code == 0 and "MLP width" in out and "peak learning rate" not in out


@pytest.mark.parametrize("args, expected", [
    (["--model", "llama-2-7b", "--tokens", "2T", "--shape", "llama-2"], "planner: error: --shape: a catalog model has its own shape"),
    (["--params", "1e9,2e9", "--hparams", "step-law-2025"], "planner: error: --hparams: shapes and hyperparameters are for one run"),
    (["--params", "1e9", "--tokens", "2e10", "--shape", "llama"], "planner: error: --shape: unknown shape recipe 'llama'"),
    (["--params", "1e9", "--tokens", "2e10", "--hparams", "deepseek"], "planner: error: --hparams: unknown hyperparameter law"),
])
def test_plan_shape_errors_name_the_option(capsys, args, expected):
    from cli_helpers import run

    code, out, err = run(["plan", *args], capsys)
    assert code == 2 and err.splitlines()[-1].startswith(expected), err


# --- catalog entries -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, name, edit, field, message", [
    ("shapes", "llama-2", ("width_multiple: {value: 128", "width_multiple: {value: 96"), "width_multiple",
     "96 must be a multiple of 64 and of head_dim 128"),
    ("shapes", "llama-2", ("head_dim: {value: 128", "head_dim: {value: 100.5"), "head_dim", "must be a whole number"),
    ("shapes", "pythia", ("norm: layernorm", "norm: batchnorm"), "norm", "'layernorm' or 'rmsnorm'"),
    ("hparams", "deepseek-2024-hparams", ("compute: {value: -0.1250", "compute: {value: -3"), "learning_rate.compute",
     "-3 is no hyperparameter exponent"),
    ("hparams", "deepseek-2024-hparams", ("value: 2000, source: deepseek-warmup", "value: 2000, source: nowhere"),
     "warmup_steps", "not a key of `sources`"),
])
def test_bad_entries_name_file_line_and_field(tmp_path, kind, name, edit, field, message):
    from planner.catalog import builtin_dir
    from planner.report.catalog_view import check_file

    text = (builtin_dir() / kind / f"{name}.yaml").read_text()
    assert edit[0] in text
    text = text.replace(edit[0], edit[1])
    line = next(i for i, row in enumerate(text.split("\n"), 1) if edit[1] in row)
    path = tmp_path / kind / f"{name}.yaml"
    path.parent.mkdir()
    path.write_text(text)
    errors, entry = check_file(path)
    assert entry is None and errors[0].startswith(f"{path}:{line}: {field}: ") and message in errors[0], errors
