"""dk.prune: removing the targeted set after targeted dropout training."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import dropkit as dk
from dropkit.functional.targeted import targeted_mask


def zero_targeted(model: nn.Module) -> nn.Module:
    """A copy in which every targeted weight (or unit) is zero, biases kept: the reference."""
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, dk.TargetedDropout):
                mask = targeted_mask(module.module.weight, module.targeted_fraction, module.mode)
                module.module.weight[mask] = 0
    return reference.eval()


def randomise_batch_norms(model: nn.Module) -> None:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 2)
                module.bias.uniform_(-1, 1)


def test_weight_mode_zeroes_exactly_the_targeted_weights_with_a_mask_that_stays() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        dk.TargetedDropout(nn.Linear(10, 16), targeted_fraction=0.5, p=0.5),
        nn.ReLU(),
        dk.TargetedDropout(nn.Conv1d(16, 4, 3), targeted_fraction=0.75, p=0.5),
    )
    x = torch.randn(5, 10, 1).squeeze(-1)
    expected_masks = [targeted_mask(net[i].module.weight, net[i].targeted_fraction) for i in (0, 2)]
    pruned, report = dk.prune(net)
    assert isinstance(pruned[0], nn.Linear) and isinstance(pruned[2], nn.Conv1d)
    for index, mask in zip((0, 2), expected_masks, strict=True):
        assert torch.equal(pruned[index].weight == 0, mask)
    assert [entry.sparsity for entry in report] == [0.5, 36 / 48]
    assert [entry.name for entry in report] == ["0", "2"]
    linear_only = nn.Sequential(net[0], nn.ReLU())
    with torch.no_grad():
        torch.testing.assert_close(dk.prune(linear_only).model(x), zero_targeted(linear_only)(x))
    # the mask stays through further training
    optimizer = torch.optim.SGD(pruned.parameters(), lr=0.1)
    pruned[0](x).pow(2).sum().backward()
    optimizer.step()
    assert torch.equal(pruned[0].weight == 0, expected_masks[0])


def test_unit_mode_removes_units_and_keeps_the_outputs_of_the_dropped_network() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(
        dk.TargetedDropout(nn.Linear(6, 12), targeted_fraction=0.5, p=0.5, mode="unit"),
        nn.BatchNorm1d(12),
        nn.Sigmoid(),  # f(bias) != 0: the removed units' constant must be folded
        dk.Dropout(0.3),
        dk.TargetedDropout(nn.Linear(12, 8), targeted_fraction=0.25, p=0.5, mode="unit"),
        nn.ReLU(),
        nn.Linear(8, 3),
    )
    randomise_batch_norms(net)
    net.eval()
    x = torch.randn(7, 6)
    reference = zero_targeted(net)
    pruned, report = dk.prune(net)
    assert (pruned[0].out_features, pruned[1].num_features, pruned[4].in_features) == (6, 6, 6)
    assert (pruned[4].out_features, pruned[6].in_features) == (6, 6)
    assert pruned[1].running_mean.shape == (6,)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), reference(x))
    first = report.layers[0]
    assert first.shape_before == (12, 6) and first.shape_after == (6, 6)
    assert first.units_removed == 6 and first.sparsity == 0.5
    assert first.trimmed == ("1", "4")
    assert report.parameters_after < report.parameters_before
    assert "parameters:" in str(report)


def test_unit_mode_through_convolutions_pooling_and_flatten() -> None:
    torch.manual_seed(2)
    net = nn.Sequential(
        dk.TargetedDropout(
            nn.Conv2d(3, 8, 3, padding=1), targeted_fraction=0.5, p=0.5, mode="unit"
        ),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        dk.SpatialDropout2d(0.1),
        nn.Sequential(
            dk.TargetedDropout(nn.Conv2d(8, 6, 3), targeted_fraction=0.5, p=0.5, mode="unit"),
            nn.Tanh(),
        ),
        nn.Flatten(),
        nn.Linear(6 * 2 * 2, 5),
    )
    randomise_batch_norms(net)
    with torch.no_grad():
        net[0].module.bias.uniform_(0.5, 1.0)  # so removed channels still output constants
    net.eval()
    x = torch.randn(2, 3, 8, 8)
    reference = zero_targeted(net)
    pruned, report = dk.prune(net)
    assert pruned[0].out_channels == 4 and pruned[1].num_features == 4
    assert pruned[5][0].in_channels == 4 and pruned[5][0].out_channels == 3
    assert pruned[7].in_features == 3 * 2 * 2
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), reference(x), rtol=1e-4, atol=1e-5)
    assert [entry.trimmed for entry in report] == [("1", "5.0"), ("7",)]


def test_units_are_zeroed_where_no_following_layer_can_be_cut() -> None:
    torch.manual_seed(3)
    last = nn.Sequential(
        nn.Linear(4, 6), dk.TargetedDropout(nn.Linear(6, 4), 0.5, 0.5, mode="unit")
    )
    pruned, report = dk.prune(last)
    assert pruned[1].weight.shape == (4, 6)
    assert (pruned[1].weight == 0).all(1).sum() == 2
    assert "units zeroed, not removed" in report.layers[0].note
    grouped = nn.Sequential(
        dk.TargetedDropout(nn.Conv2d(4, 4, 3, groups=2), 0.5, 0.5, mode="unit"), nn.Conv2d(4, 2, 1)
    )
    assert "grouped convolution" in dk.prune(grouped).report.layers[0].note
    alone = dk.TargetedDropout(nn.Linear(3, 3), 0.5, 0.5, mode="unit")
    layer, report = dk.prune(alone)
    assert isinstance(layer, nn.Linear) and "not inside an nn.Sequential" in report.layers[0].note


def test_copy_by_default_inplace_on_request() -> None:
    net = nn.Sequential(dk.TargetedDropout(nn.Linear(4, 4), 0.5, 0.5), nn.ReLU())
    before = net[0].module.weight.clone()
    pruned, _ = dk.prune(net)
    assert isinstance(net[0], dk.TargetedDropout) and torch.equal(net[0].module.weight, before)
    assert pruned is not net
    same, _ = dk.prune(net, inplace=True)
    assert same is net and isinstance(net[0], nn.Linear)


def test_a_model_without_targeted_dropout_and_errors() -> None:
    _, report = dk.prune(nn.Linear(2, 2))
    assert len(report) == 0 and report.parameters_before == report.parameters_after == 6
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got dict"):
        dk.prune({})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"inplace must be a bool, got 'yes' \(str\)"):
        dk.prune(nn.Linear(2, 2), inplace="yes")  # type: ignore[arg-type]
