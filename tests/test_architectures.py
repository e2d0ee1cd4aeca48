"""The transformer, SAID, the pretrained anchor and the text datasets."""
import math

import pytest
import torch

from benchmark.core.errors import UserError
from benchmark.models import create_model
from subspaces import FlatModel
from subspaces.said import SAIDProjection, layer_slices, said


def _transformer_D(C, T, w, depth, r, classes, patch_features):
    embed = (patch_features + 1) * w
    block = 4 * w * w + 4 * w + 2 * r * w * w + (r + 1) * w + 4 * w
    return embed + T * w + depth * block + 2 * w + (w + 1) * classes


@pytest.mark.parametrize("shape, options, T, features", [
    ((1, 40), {}, 40, 1),
    ((1, 40), {"width": 28, "depth": 3, "patch": 4, "mlp_ratio": 4}, 10, 4),
    ((3, 32, 32), {"patch": 8}, 16, 3 * 64),
    ((48, 32), {"pool": "last"}, 32, 48),
])
def test_transformer_D_is_counted_exactly(shape, options, T, features):
    model = create_model("transformer", shape, 10, **options)
    w, depth, r = options.get("width", 32), options.get("depth", 2), options.get("mlp_ratio", 2)
    D = _transformer_D(shape[0], T, w, depth, r, 10, features)
    assert FlatModel.of(model).D == D == sum(p.numel() for p in model.parameters())
    assert model(torch.randn(5, *shape)).shape == (5, 10)


def test_transformer_population_under_vmap_equals_each_member_alone():
    model = create_model("transformer", (1, 40), 10, width=16)
    flat = FlatModel.of(model)
    W = flat.flatten()[None] + 0.01 * torch.randn(3, flat.D, generator=torch.Generator().manual_seed(0))
    x = torch.randn(6, 1, 40)
    out = flat.batched(W, x, True)
    for k in range(3):
        torch.testing.assert_close(out[k], flat(W[k], x), atol=1e-5, rtol=1e-5)


def test_transformer_patches_keep_each_patch_together():
    model = create_model("transformer", (2, 4, 4), 3, patch=2, width=8, heads=2)
    x = torch.arange(2 * 16.0).view(1, 2, 4, 4)
    tokens = model.tokens(x)
    assert tokens.shape == (1, 4, 8)
    assert tokens[0, 1].tolist() == [2, 3, 6, 7, 18, 19, 22, 23]  # top-right patch, both channels


@pytest.mark.parametrize("options, message", [
    ({"width": 30, "heads": 4}, "transformer width 30 is not divisible by heads 4"),
    ({"patch": 3}, "transformer patch 3 does not divide the input's length/size (40,)"),
    ({"pool": "cls"}, "unknown transformer pool 'cls'; accepted: mean, last"),
])
def test_transformer_bad_options_are_one_line(options, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_model("transformer", (1, 40), 10, **options)


# --- SAID ------------------------------------------------------------------------------------------


def _layers():
    flat = FlatModel.of(create_model("transformer", (1, 40), 10, width=16))
    return flat, layer_slices(flat.names, flat.slices)


def test_said_layers_are_modules_covering_every_coordinate_once():
    flat, layers = _layers()
    assert layers[0].start == 0 and layers[-1].stop == flat.D
    assert all(a.stop == b.start for a, b in zip(layers, layers[1:]))
    # position, embed, per block: norm1, attn.qkv, attn.out, norm2, mlp.0, mlp.2; norm; head
    assert len(layers) == 2 + 2 * 6 + 2


@pytest.mark.parametrize("d", [20, 100, 400])
def test_said_d_counts_the_scales_and_columns_have_unit_norm_per_layer(d):
    flat, layers = _layers()
    m = len(layers)
    p = said(layers, d, seed=0)
    assert p.d == d and p.D == flat.D and p.K == 1
    theta = torch.zeros(1, d)
    assert torch.count_nonzero(p(theta)) == 0  # θ = 0: w = b
    # columns of each layer's map: P_l e_j with scales at 1 (λ = 0)
    cols = torch.cat([torch.eye(d - m), torch.zeros(d - m, m)], dim=1)  # (d − m, d): e_j, λ = 0
    A = torch.cat([p(cols[j:j + 1]) for j in range(d - m)])  # (d − m, D): row j = column j over all layers
    for layer, P in zip(layers, p.maps):
        norms = A[:, layer].norm(dim=1)
        if P.kind == "dense":
            torch.testing.assert_close(norms, torch.ones_like(norms), atol=1e-5, rtol=0)
        else:  # Fastfood: unit norm in expectation
            assert abs(float((norms ** 2).mean()) - 1) < 0.1
    # a scale multiplies exactly its own layer's block
    theta = torch.randn(1, d, generator=torch.Generator().manual_seed(1))
    bumped = theta.clone()
    bumped[0, d - m + 3] += 1.0
    diff = p(bumped) - p(theta)
    l3 = layers[3]
    assert torch.count_nonzero(diff[:, : l3.start]) == 0 and torch.count_nonzero(diff[:, l3.stop:]) == 0
    torch.testing.assert_close(diff[:, l3], p.maps[3](theta[:, : d - m]), atol=1e-5, rtol=1e-5)


def test_said_gives_theta_a_gradient_from_the_first_step_and_stacks():
    flat, layers = _layers()
    p = said(layers, 200, seed=0).stack([said(layers, 200, seed=1)])
    assert isinstance(p, SAIDProjection) and p.K == 2
    theta = torch.zeros(2, 200, requires_grad=True)
    target = torch.randn(2, flat.D)
    ((p(theta) - target) ** 2).sum().backward()
    m = len(layers)
    assert torch.count_nonzero(theta.grad[:, : 200 - m]) > 0  # θ' moves although θ = 0
    with pytest.raises(ValueError, match=f"SAID needs d > {m}"):
        said(layers, m, seed=0)


def test_said_member_of_run_is_built_with_d_exact():
    from benchmark.methods import build_subspace
    from benchmark.training.prep import Preparation

    flat, layers = _layers()
    prep = Preparation(0, flat.flatten(), model=flat)
    sub = build_subspace("said", prep, 300)
    assert sub.d == 300 and sub.kind == "said"
    torch.testing.assert_close(sub.weights(sub.init_theta())[0], prep.w0)


def test_said_candidate_lrs_are_the_global_maps_over_root_m_and_the_wave_stops_at_its_smallest_d():
    from benchmark.config.build import build_config
    from benchmark.runner.extension import plan_extension
    from benchmark.runner.grid import plan
    from tests.test_cli import _raw

    flat, layers = _layers()
    m = len(layers)
    # the whole map's columns: √m long (m unit-norm blocks), a global map's: 1
    p = said(layers, 300, seed=0)
    A = torch.cat([p(torch.eye(300)[j:j + 1]) for j in range(300 - m)])
    assert abs(float(A.norm(dim=1).pow(2).mean()) - m) < 0.1 * m
    cfg = build_config(_raw(["methods=[full,random_affine,said]", "ratios=[1,4]", "seeds=[0]", "lr_grid=[0.3,1,3]"]))
    lrs = lambda cells, method: sorted({c.lr for c in cells if c.method == method})
    cells = plan(cfg, flat.D, flat)
    assert lrs(cells, "said") == pytest.approx([lr / m ** 0.5 for lr in lrs(cells, "random_affine")], rel=1e-5)
    assert lrs(plan(cfg, flat.D), "said") == lrs(cells, "random_affine")  # without a model: unscaled
    # every seed and lr reaches 90% at d = D/4: the wave goes down to d = m + 1, with SAID's own lrs
    recs = [dict(method=c.method, ratio=c.ratio, d=c.d, D=flat.D, seed=0, lr=c.lr, status="FINISHED",
                 val_acc=0.9, val_loss=0.3, test_acc=0.9) for c in cells]
    cfg = build_config(_raw(["methods=[full,random_affine,said]", "ratios=[1,4]", "seeds=[0]", "lr_grid=[0.3,1,3]",
                             "extension.max_dims=1"]))
    wave = plan_extension(cfg, recs, flat.D, model=flat)
    assert {c.d for c in wave if c.method == "said"} == {m + 1} and {c.d for c in wave if c.method == "random_affine"} == {1}
    assert lrs(wave, "said") == lrs(cells, "said")

# --- the pretrained anchor ------------------------------------------------------------------------------


def test_pretrained_members_start_at_the_pretrained_weights(data):
    from benchmark.methods import METHODS, build_subspace, prep_steps
    from benchmark.training.loop import Group, TrainConfig, train_population
    from benchmark.training.prep import prepare

    flat = FlatModel.of(create_model("mlp", data.input_shape, data.num_classes, hidden=(16,)))
    w0 = flat.flatten()[None]
    cfg = TrainConfig(optimizer="adam", lr=1e-2, epochs=2, batch_size=64)
    preps = prepare([0], w0, flat, data, cfg, needs={"wp"}, own={}, burn_in_steps=0)
    wp = preps[0].wp
    assert wp is not None and not torch.equal(wp, w0[0])  # trained on the pretraining task
    assert METHODS["pretrained_affine"].anchor == "wp" and METHODS["pretrained_affine"].needs == {"wp"}
    sub = build_subspace("pretrained_affine", preps[0], 20)
    torch.testing.assert_close(sub.weights(sub.init_theta())[0], wp)
    r = train_population(flat, [Group(sub, 0.1, (0,))], data, TrainConfig(epochs=0))
    torch.testing.assert_close(r.weights[0], wp)  # before any step, the member is the pretrained network
    assert prep_steps("pretrained_affine", preps[0], 20) == preps[0].full_steps
    # the pretraining task is not the target: the pretrained network is worse on it than on its own task
    from benchmark.data.tasks import permutations, permuted
    from benchmark.training.loop import evaluate
    from benchmark.training.prep import PRETRAINING_TASK_SEED

    perm = permutations(math.prod(data.input_shape), 2, PRETRAINING_TASK_SEED)[1]
    own = evaluate(flat, wp[None], permuted(data, perm).x_test, data.y_test, 256)[0]
    target = evaluate(flat, wp[None], data.x_test, data.y_test, 256)[0]
    assert float(own) > float(target)


# --- text ----------------------------------------------------------------------------------------------


def test_pydoc_is_offline_one_hot_next_character_prediction():
    from benchmark.data import offline
    from benchmark.data.registry import load_dataset
    from benchmark.data.text import unigram_bits

    cfg = {"name": "pydoc", "val_fraction": 0.1, "split_seed": 0, "vocab": 20, "context": 8,
           "train_windows": 300, "val_windows": 50, "test_windows": 80}
    data = load_dataset(cfg)
    assert "pydoc" in offline() and "wikitext2" not in offline()
    assert data.x_train.shape == (300, 20, 8) and data.num_classes == 20
    assert torch.equal(data.x_train.sum(1), torch.ones(300, 8))  # one-hot
    assert int(data.y_test.max()) < 20
    assert 2.0 < unigram_bits(data) < math.log2(20)
    again = load_dataset(cfg)
    assert torch.equal(again.x_test, data.x_test) and torch.equal(again.y_train, data.y_train)


def _write_wikitext(folder, train="The quick brown fox jumps over the lazy dog. " * 20):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("wiki.train.raw", train), ("wiki.valid.raw", "A lazy dog sleeps in the sun. " * 10),
                       ("wiki.test.raw", "The brown dog jumps over the fox. " * 10)):
        (folder / name).write_text(text, encoding="utf-8")


def test_wikitext2_reads_the_release_files_from_root(tmp_path):
    from benchmark.data.registry import load_dataset
    from benchmark.data.text import vocabulary

    _write_wikitext(tmp_path / "wikitext-2-raw")
    cfg = {"name": "wikitext2", "root": str(tmp_path), "val_fraction": 0.1, "split_seed": 0, "vocab": 12,
           "context": 10, "train_windows": 100, "val_windows": 20, "test_windows": 30}
    data = load_dataset(cfg)
    assert data.x_train.shape == (100, 12, 10) and len(data.y_test) == 30
    text = "The quick brown fox jumps over the lazy dog. " * 20
    vocab = vocabulary(text, 12)
    assert vocab[0] == " " and len(vocab) == 11
    seen = "".join(c if c in vocab else "?" for c in text)  # every other character shares one id
    decode = lambda ids: "".join(vocab[i] if i < 11 else "?" for i in ids)
    for n in range(5):  # each window and its label is a piece of the training text
        assert decode(data.x_train[n].argmax(0).tolist() + [int(data.y_train[n])]) in seen


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "dataset.root={root!r}: wiki.train.raw not found in {root}"),
    (lambda p: _write_wikitext(p, train="short"), "{root}/wiki.train.raw: 5 characters of text, fewer than one window"),
    (lambda p: (_write_wikitext(p), (p / "wiki.test.raw").write_bytes(b"\xff\xfe bad")),
     "{root}/wiki.test.raw: not UTF-8 text (byte 0)"),
])
def test_wikitext2_rejects_missing_or_malformed_files_with_one_line(tmp_path, setup, message):
    from benchmark.data.registry import load_dataset

    root = tmp_path / "wt"
    root.mkdir()
    setup(root)
    with pytest.raises(UserError) as e:
        load_dataset({"name": "wikitext2", "root": str(root), "val_fraction": 0.1, "split_seed": 0, "context": 10})
    assert str(e.value).startswith(message.format(root=str(root))) and "\n" not in str(e.value)


# --- the comparison --------------------------------------------------------------------------------------


def _record(method, d, seed, acc, loss, ratio=None):
    return {"method": method, "d": d, "seed": seed, "status": "FINISHED", "test_acc": acc, "val_acc": acc,
            "test_loss": loss, "lr": 0.1, "ratio": ratio or 100.0 / d, "D": 100}


def test_text_thresholds_are_on_bits_saved_over_the_unigram_model():
    from benchmark.studies.architectures.experiment import Job, rows_of

    # unigram 4 bits, reference 2 bits per char (loss in nats): 90% of the 2-bit gain is 2.2 bits
    ln2 = math.log(2)
    recs = [_record("full", 100, s, 0.5, 2.0 * ln2) for s in (0, 1)]
    for s in (0, 1):
        recs += [_record("random_affine", 10, s, 0.3, 3.0 * ln2), _record("random_affine", 40, s, 0.4, 2.1 * ln2)]
    job = Job("t", "pydoc", "transformer", (), "bits")
    (row,) = rows_of(job, recs, 100, unigram=4.0)
    # gain 1.0 at d = 10, 1.9 at d = 40: 1.8 is crossed at exp(log 10 + 0.8/0.9 · log 4)
    assert row.d90 == pytest.approx(math.exp(math.log(10) + (0.8 / 0.9) * math.log(4)))
    assert row.reference == pytest.approx(2.0) and row.curve == {10.0: pytest.approx(3.0), 40.0: pytest.approx(2.1)}
    from benchmark.studies.architectures.report import to_markdown

    assert "Not a valid threshold" not in to_markdown([row], math.nan, {"t": 4.0}, "")
    row.curve[40.0] = 1.9  # a member with fewer bits than the full network: the reference is suspect
    assert "**Not a valid threshold:** random_affine reach fewer bits per character" in to_markdown(
        [row], math.nan, {"t": 4.0}, "")


def test_lrs_chosen_at_an_end_of_their_candidates_are_listed():
    from benchmark.studies.architectures.experiment import lr_edges
    from benchmark.studies.architectures.report import to_markdown

    rec = lambda m, ratio, d, lr, acc: dict(method=m, ratio=ratio, d=d, seed=0, lr=lr, status="FINISHED", val_acc=acc,
                                            val_loss=1.0)
    recs = [rec("full", 1.0, 100, lr, acc) for lr, acc in ((0.001, 0.5), (0.01, 0.7), (0.1, 0.6))]  # interior
    recs += [rec("said", 4.0, 25, lr, acc) for lr, acc in ((0.01, 0.6), (0.03, 0.5), (0.1, 0.4))]  # smallest
    recs += [rec("said", 2.0, 50, lr, acc) for lr, acc in ((0.01, 0.4), (0.03, 0.5), (0.1, 0.6))]  # largest
    edges = lr_edges(recs)
    assert edges == {"said": ("d 50: 0.1 (largest)", "d 25: 0.01 (smallest)")}
    md = to_markdown([], math.nan, {}, "", {"job": edges})
    assert "- job said: d 50: 0.1 (largest); d 25: 0.01 (smallest)" in md
    assert "end of their candidates" not in to_markdown([], math.nan, {}, "", {"job": {}})


def test_common_target_is_ninety_percent_of_the_weakest_reference():
    from benchmark.studies.architectures.experiment import Row, common_thresholds

    rows = [Row("a", "mnist1d", "mlp", 100, "random_affine", 0.6, None, None, None, None, False, {10.0: 0.5, 100.0: 0.6}),
            Row("b", "mnist1d", "cnn1d", 100, "random_affine", 0.9, None, None, None, None, False, {10.0: 0.3, 100.0: 0.9})]
    assert common_thresholds(rows) == pytest.approx(0.54)
    assert rows[0].d90_common == pytest.approx(math.exp(math.log(10) + 0.4 * math.log(10)))
    assert 10 < rows[1].d90_common < 100 and not rows[1].common_upper
    rows[1].curve[10.0] = 0.6  # reached at the smallest d: only an upper bound
    common_thresholds(rows)
    assert rows[1].d90_common == 10.0 and rows[1].common_upper


def test_architectures_cli_runs_each_job_and_writes_the_comparison(tmp_path):
    from benchmark.__main__ import main

    out = tmp_path / "arch"
    rc = main(["architectures", "--models", "mlp", "transformer", "--no-text", "--seeds", "0", "1", "--ratios", "8",
               "--epochs", "1", "--set", "extension.enabled=false", "quantize_bits=[]", "dataset.num_samples=600",
               "--out", str(out), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"])
    assert rc == 0
    md = (out / "architectures.md").read_text()
    assert "| mlp | 5,110 |" in md and "| transformer | 4,890 |" in md
    rows = (out / "architectures.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2 * 3  # two models x (random_affine, said, pretrained_affine)


def test_architectures_cli_bad_model_is_one_line(tmp_path, capsys):
    from benchmark.__main__ import main

    assert main(["architectures", "--models", "lstm", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown model lstm; accepted: mlp, cnn1d, transformer"
