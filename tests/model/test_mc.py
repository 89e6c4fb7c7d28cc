import math

import numpy as np
import pytest
import torch
from torch import nn

import dropkit as dk
from tests.model import zoo


def cnn_with_dropout() -> nn.Sequential:
    model = zoo.cnn()
    model.insert(3, dk.SpatialDropout2d(0.3))
    model.insert(len(model) - 1, nn.Dropout(0.5))
    return model


def test_batchnorm_statistics_stay_bit_identical_and_flags_are_restored():
    torch.manual_seed(0)
    model = cnn_with_dropout().train()
    model(torch.randn(4, 3, 8, 8))  # running statistics away from their initial values
    model[1].eval()  # a mixed state must come back exactly
    flags = [m.training for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 3, 8, 8)
    with dk.mc_dropout(model):
        assert not any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
        assert model[3].training and model[-2].training
        outputs = [model(x) for _ in range(3)]
    assert not torch.equal(outputs[0], outputs[1])
    assert [m.training for m in model.modules()] == flags
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_flags_are_restored_when_the_block_raises():
    model = cnn_with_dropout().train()
    with pytest.raises(RuntimeError, match="boom"), dk.mc_dropout(model):
        raise RuntimeError("boom")
    assert all(m.training for m in model.modules())


def test_torch_transformer_layers_sample_attention_dropout_in_eval():
    torch.manual_seed(0)
    model = zoo.Transformer(0.0).eval()
    dk.set_dropout(model, 0.3, kinds=["attention"])
    tokens = torch.randint(0, 50, (3, 5))
    with torch.no_grad():
        assert torch.equal(model(tokens), model(tokens))
        with dk.mc_dropout(model):
            assert not torch.equal(model(tokens), model(tokens))
            assert not model.encoder.layers[0].linear1.training


def test_no_active_site_warns():
    with (
        pytest.warns(UserWarning, match="no dropout site with a rate above 0"),
        dk.mc_dropout(zoo.cnn()),
    ):
        pass


def test_entropy_and_mutual_information_match_their_definitions():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 4))
    x = torch.randn(5, 6)
    prediction = dk.mc_predict(model, x, samples=30, batch_size=50, keep_samples=True)
    probs = prediction.samples
    assert probs.shape == (30, 5, 4)
    mean = probs.mean(0)
    entropy = -(mean * mean.log()).sum(-1)
    expected_entropy = -(probs * probs.log()).sum(-1).mean(0)
    assert torch.allclose(prediction.mean, mean)
    assert torch.allclose(prediction.std, probs.std(0, correction=0))
    assert torch.allclose(prediction.entropy, entropy, atol=1e-6)
    assert torch.allclose(prediction.mutual_information, entropy - expected_entropy, atol=1e-6)
    assert (prediction.mutual_information > 0).all()


def test_batched_replicas_get_independent_masks():
    torch.manual_seed(0)
    model = nn.Dropout(0.5)
    x = torch.ones(2, 400)
    prediction = dk.mc_predict(
        model, x, samples=8, batch_size=16, task="regression", keep_samples=True
    )
    samples = prediction.samples
    assert prediction.entropy is None and prediction.mutual_information is None
    dropped = (samples == 0).float().mean(dim=(1, 2))
    sigma = math.sqrt(0.25 / 800)
    assert ((dropped - 0.5).abs() < 5 * sigma).all()
    agreement = (samples[0] == samples[1]).float().mean()
    assert abs(float(agreement) - 0.5) < 5 * math.sqrt(0.25 / 800)  # independent, not shared


def test_batch_shared_masks_run_one_sample_per_pass():
    model = nn.Sequential(dk.DropConnect(nn.Linear(4, 3), 0.5))
    calls = []
    model.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    dk.mc_predict(model, torch.randn(2, 4), samples=5, batch_size=100)
    assert calls == [2] * 5
    calls.clear()
    plain = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.2))
    plain.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    dk.mc_predict(plain, torch.randn(2, 4), samples=5, batch_size=4)
    assert calls == [4, 4, 2]


def test_mc_predict_validates_arguments():
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.2))
    with pytest.raises(ValueError, match="samples must be an int >= 1, got 0"):
        dk.mc_predict(model, torch.randn(2, 4), samples=0)
    with pytest.raises(ValueError, match="task must be one of"):
        dk.mc_predict(model, torch.randn(2, 4), task="ranking")
    with pytest.raises(TypeError, match=r"from_logits must be a bool, got 'yes' \(str\)"):
        dk.mc_predict(model, torch.randn(2, 4), from_logits="yes")
    with pytest.raises(TypeError, match=r"keep_samples must be a bool, got 1 \(int\)"):
        dk.mc_predict(model, torch.randn(2, 4), keep_samples=1)


@pytest.mark.parametrize("model", [3, "net", None, torch.randn(2)])
def test_mc_tools_refuse_what_is_not_a_module(model):
    kind = type(model).__name__
    with pytest.raises(TypeError, match=f"model must be a torch.nn.Module, got {kind}"):
        dk.mc_predict(model, torch.randn(2, 4))
    with pytest.raises(TypeError, match=f"model must be a torch.nn.Module, got {kind}"):
        dk.mc_dropout(model).__enter__()


def test_mc_dropout_refuses_kinds_that_are_not_a_list():
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.2))
    with pytest.raises(TypeError, match=r"kinds must be a list of strings or 'all', got 3 \(int\)"):
        dk.mc_dropout(model, kinds=3).__enter__()  # type: ignore[arg-type]


def test_expected_calibration_error_by_hand():
    probs = torch.tensor([[0.95, 0.05], [0.65, 0.35], [0.35, 0.65], [0.15, 0.85]])
    labels = torch.tensor([0, 1, 1, 1])
    # bins of width 0.5: (0.5, 1.0] holds all four: accuracy 3/4, confidence 0.775.
    assert dk.expected_calibration_error(probs, labels, bins=2) == pytest.approx(0.025)
    # ten bins: 0.95 right, 0.65 wrong, 0.65 right, 0.85 right.
    expected = (0.05 + abs(0.5 - 0.65) * 2 + 0.15) / 4
    assert dk.expected_calibration_error(probs, labels, bins=10) == pytest.approx(expected)


@pytest.mark.parametrize("classes", [2, 5, 10])
def test_expected_calibration_error_matches_torchmetrics(classes):
    metrics = pytest.importorskip("torchmetrics.functional")
    generator = torch.Generator().manual_seed(classes)
    for trial, bins in enumerate((1, 4, 10, 15, 30)):
        scale = 0.5 + trial  # from nearly uniform to confident predictions
        logits = scale * torch.randn(400, classes, generator=generator)
        probs = logits.softmax(-1)
        # labels agree with the prediction more often than chance, less often than always
        guess = torch.randint(0, classes, (400,), generator=generator)
        keep = torch.rand(400, generator=generator) < 0.6
        labels = torch.where(keep, probs.argmax(-1), guess)
        ours = dk.expected_calibration_error(probs, labels, bins=bins)
        theirs = metrics.calibration_error(
            probs, labels, task="multiclass", num_classes=classes, n_bins=bins, norm="l1"
        )
        assert isinstance(ours, float)
        assert ours == pytest.approx(float(theirs), abs=1e-6), (classes, bins)


def test_scalar_scores_are_floats_and_per_sample_values_tensors():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    prediction = dk.mc_predict(model, torch.randn(6, 4), samples=3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    assert isinstance(dk.expected_calibration_error(prediction.mean, labels), float)
    assert isinstance(dk.negative_log_likelihood(prediction.mean, labels), float)
    assert isinstance(prediction.entropy, torch.Tensor) and prediction.entropy.shape == (6,)


def test_calibration_bins_are_closed_on_the_right():
    # Guo et al. 2017: bin m holds confidences in ((m - 1) / M, m / M]; 0.5 falls in (0, 0.5].
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.05, 0.9, 0.05]])
    labels = torch.tensor([0, 0])  # the first right at 0.5, the second wrong at 0.9
    expected = (abs(1 - 0.5) + abs(0 - 0.9)) / 2  # two bins of one sample each
    assert dk.expected_calibration_error(probs, labels, bins=2) == pytest.approx(expected)


def test_negative_log_likelihood_by_hand_and_clamped():
    probs = torch.tensor([[0.2, 0.8], [1.0, 0.0]])
    nll = dk.negative_log_likelihood(probs, torch.tensor([1, 1]), eps=1e-6)
    assert nll == pytest.approx((-math.log(0.8) - math.log(1e-6)) / 2)


def test_scores_validate_their_inputs():
    probs = torch.tensor([[0.5, 0.5]])
    with pytest.raises(
        TypeError, match="labels must be a 1-dimensional integer tensor of classes, got list"
    ):
        dk.negative_log_likelihood(probs, [0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"got shape \(1, 1\) and dtype torch.int64"):
        dk.expected_calibration_error(probs, torch.tensor([[0]]))
    with pytest.raises(TypeError, match=r"eps must be a float in \(0, 1\), got 'small' \(str\)"):
        dk.negative_log_likelihood(probs, torch.tensor([0]), eps="small")  # type: ignore[arg-type]
    nll = dk.negative_log_likelihood(probs, torch.tensor([0]), eps=np.float32(1e-6))
    assert nll == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="labels has 3 rows but probs has 2"):
        dk.expected_calibration_error(torch.rand(2, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        dk.negative_log_likelihood(torch.rand(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="bins must be an int >= 1"):
        dk.expected_calibration_error(torch.rand(2, 3), torch.tensor([0, 1]), bins=0)
