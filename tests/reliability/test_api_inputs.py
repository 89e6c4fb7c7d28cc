# ruff: noqa: E501  (the corpus keeps one case per line)
"""The bad-input corpus of the Python API: every refusal names the argument and the value.

One case per line: (case id, the call, the exception type, a regex its message must match).
The rate corpus is the product of every argument that takes a rate with every kind of bad rate.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

import dropkit as dk
import dropkit.functional as F
from dropkit.functional.targeted import targeted_mask
from dropkit.nn._base import RateModule

X2 = torch.ones(4, 5)
X3 = torch.ones(2, 3, 4)
X4 = torch.ones(2, 3, 8, 8)
LONG = torch.ones(3, dtype=torch.long)
META = torch.ones(2, 3, device="meta")
WEIGHT = torch.ones(3, 5)
PROBS = torch.full((3, 2), 0.5)
LABELS = torch.zeros(3, dtype=torch.long)
HISTORY = {"train_acc": [0.5, 0.6, 0.7], "val_acc": [0.5, 0.55, 0.5]}
FLOAT_DTYPES = r"input must be a floating-point tensor \(float16, bfloat16, float32 or float64\)"


def sequential() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 5), nn.Dropout(0.1))


def assign_p(module: nn.Module, value: object) -> None:
    module.p = value  # type: ignore[assignment]


# One line per argument that takes a rate: (id, call with the rate, the argument's name).
RATE_TAKERS = [
    ("F.dropout", lambda p: F.dropout(X2, p), "p"),
    ("F.drop_block", lambda p: F.drop_block(X4, p, 3), "p"),
    ("F.drop_path", lambda p: F.drop_path(X2, p), "p"),
    ("F.drop_path_residual", lambda p: F.drop_path_residual(X2, torch.relu, p), "p"),
    ("F.spatial_dropout", lambda p: F.spatial_dropout(X3, p), "p"),
    ("F.locked_dropout", lambda p: F.locked_dropout(X3, p), "p"),
    ("F.embedding_dropout", lambda p: F.embedding_dropout(WEIGHT, p), "p"),
    ("F.drop_connect", lambda p: F.drop_connect(WEIGHT, p), "p"),
    ("F.drop_connect_gaussian", lambda p: F.drop_connect_gaussian(X2, WEIGHT, None, p), "p"),
    ("F.gaussian_dropout", lambda p: F.gaussian_dropout(X2, p), "p"),
    ("F.alpha_dropout", lambda p: F.alpha_dropout(X2, p), "p"),
    (
        "F.targeted_dropout targeted_fraction",
        lambda p: F.targeted_dropout(WEIGHT, p, 0.5),
        "targeted_fraction",
    ),
    ("F.targeted_dropout p", lambda p: F.targeted_dropout(WEIGHT, 0.5, p), "p"),
    ("Dropout", lambda p: dk.Dropout(p), "p"),
    ("Dropout.p =", lambda p: assign_p(dk.Dropout(), p), "p"),
    ("DropBlock2d", lambda p: dk.DropBlock2d(p), "p"),
    ("DropBlock3d", lambda p: dk.DropBlock3d(p), "p"),
    ("DropPath", lambda p: dk.DropPath(p), "p"),
    ("DropPathResidual", lambda p: dk.DropPathResidual(nn.Identity(), p), "p"),
    ("SpatialDropout1d", lambda p: dk.SpatialDropout1d(p), "p"),
    ("SpatialDropout2d", lambda p: dk.SpatialDropout2d(p), "p"),
    ("SpatialDropout3d", lambda p: dk.SpatialDropout3d(p), "p"),
    ("LockedDropout", lambda p: dk.LockedDropout(p), "p"),
    ("EmbeddingDropout", lambda p: dk.EmbeddingDropout(nn.Embedding(4, 2), p), "p"),
    ("DropConnect", lambda p: dk.DropConnect(nn.Linear(2, 2), p), "p"),
    ("GaussianDropout", lambda p: dk.GaussianDropout(p), "p"),
    ("AlphaDropout", lambda p: dk.AlphaDropout(p), "p"),
    ("WeightDrop", lambda p: dk.WeightDrop(nn.LSTM(2, 2), p), "p"),
    (
        "TargetedDropout targeted_fraction",
        lambda p: dk.TargetedDropout(nn.Linear(2, 2), targeted_fraction=p),
        "targeted_fraction",
    ),
    ("TargetedDropout p", lambda p: dk.TargetedDropout(nn.Linear(2, 2), p=p), "p"),
    ("set_dropout", lambda p: dk.set_dropout(sequential(), p), "p"),
    ("Policy conv", lambda p: dk.Policy(conv=p), "conv"),
    ("Policy dense", lambda p: dk.Policy(dense=p), "dense"),
    ("Policy head", lambda p: dk.Policy(head=p), "head"),
    ("Policy attention", lambda p: dk.Policy(attention=p), "attention"),
    ("Policy residual", lambda p: dk.Policy(residual=p), "residual"),
    ("Policy embedding", lambda p: dk.Policy(embedding=p), "embedding"),
    ("schedules.constant", lambda p: dk.schedules.constant(p), "p"),
    ("schedules.linear start_rate", lambda p: dk.schedules.linear(p, 0.1, 10), "start_rate"),
    ("schedules.linear end_rate", lambda p: dk.schedules.linear(0.1, p, 10), "end_rate"),
    ("schedules.early", lambda p: dk.schedules.early(p, 10), "p"),
    ("depth_rates", lambda p: dk.depth_rates(p, 4), "max_rate"),
    ("widen", lambda p: dk.widen(64, p), "p"),
    ("diagnose current_p", lambda p: dk.diagnose(HISTORY, current_p=p), "current_p"),
]

# Arguments where None means "not set" (so None is no bad rate there).
OPTIONAL = {"Policy conv", "Policy dense", "Policy head", "Policy attention", "Policy residual"}
OPTIONAL |= {"Policy embedding", "diagnose current_p"}

# One line per kind of bad rate: (id, value, exception type, message after "NAME must be ").
BAD_RATES = [
    ("above 1", 1.5, ValueError, r"a probability in \[0, 1\], got 1\.5"),
    ("negative", -0.1, ValueError, r"a probability in \[0, 1\], got -0\.1"),
    ("NaN", math.nan, ValueError, r"a probability in \[0, 1\], got nan"),
    ("infinity", math.inf, ValueError, r"a probability in \[0, 1\], got inf"),
    ("str", "0.5", TypeError, r"a float in \[0, 1\], got '0\.5' \(str\)"),
    ("bool", True, TypeError, r"a float in \[0, 1\], got True \(bool\)"),
    ("numpy bool", np.bool_(False), TypeError, r"a float in \[0, 1\], got .*False.*bool"),
    ("None", None, TypeError, r"a float in \[0, 1\], got None \(NoneType\)"),
    ("complex", 0.5j, TypeError, r"a float in \[0, 1\], got 0\.5j \(complex\)"),
    ("list", [0.5], TypeError, r"a float in \[0, 1\], got \[0\.5\] \(list\)"),
    (
        "tensor with grad",
        torch.tensor(0.5, requires_grad=True),
        TypeError,
        r"a float in \[0, 1\], got a tensor .* that requires grad",
    ),
    (
        "tensor of 2",
        torch.tensor([0.1, 0.2]),
        TypeError,
        r"a float in \[0, 1\], got a tensor of shape \(2,\)",
    ),
]

# Every real number type is a rate; one line per type.
GOOD_RATES = [
    ("numpy float32", np.float32(0.25)),
    ("numpy float64", np.float64(0.25)),
    ("numpy float16", np.float16(0.25)),
    ("Fraction", Fraction(1, 4)),
    ("0-dim tensor", torch.tensor(0.25)),
    ("numpy int 0", np.int64(0)),
]

CASES = [
    # Tensors of the wrong type, dtype, rank, device.
    ("dropout on a list", lambda: F.dropout([1.0], 0.5), TypeError, "input must be a torch.Tensor, got list"),
    ("dropout on int64", lambda: F.dropout(LONG, 0.5), TypeError, FLOAT_DTYPES + ".*torch.int64"),
    ("dropout on bool", lambda: F.dropout(LONG.bool(), 0.5), TypeError, FLOAT_DTYPES + ".*torch.bool"),
    ("dropout on complex", lambda: F.dropout(X2.cfloat(), 0.5), TypeError, FLOAT_DTYPES + ".*complex64"),
    ("gaussian_dropout on int32", lambda: F.gaussian_dropout(LONG.int(), 0.5), TypeError, FLOAT_DTYPES + ".*int32"),
    ("alpha_dropout on int64", lambda: F.alpha_dropout(LONG, 0.5), TypeError, FLOAT_DTYPES),
    ("gaussian_noise on int64", lambda: F.gaussian_noise(LONG, 0.1), TypeError, FLOAT_DTYPES),
    ("drop_path on uint8", lambda: F.drop_path(LONG.byte(), 0.1), TypeError, FLOAT_DTYPES + ".*uint8"),
    ("spatial_dropout on int64", lambda: F.spatial_dropout(torch.ones(2, 3, 4, dtype=torch.long), 0.5), TypeError, FLOAT_DTYPES),
    ("drop_block on int64", lambda: F.drop_block(X4.long(), 0.1, 3), TypeError, FLOAT_DTYPES),
    ("locked_dropout on int64", lambda: F.locked_dropout(X3.long(), 0.5), TypeError, FLOAT_DTYPES),
    ("targeted_dropout on int64", lambda: F.targeted_dropout(WEIGHT.long(), 0.5, 0.5), TypeError, "weight must be a floating-point tensor"),
    ("targeted_dropout on a list", lambda: F.targeted_dropout([[1.0]], 0.5, 0.5), TypeError, "weight must be a torch.Tensor, got list"),
    ("Dropout on int64", lambda: dk.Dropout(0.5)(LONG), TypeError, FLOAT_DTYPES),
    ("drop_block on 2 dims", lambda: F.drop_block(X2, 0.1, 3), ValueError, r"input must have 3 or 4 or 5 dimensions .*got 2 \(shape \(4, 5\)\)"),
    ("drop_path on 0 dims", lambda: F.drop_path(torch.tensor(1.0), 0.1), ValueError, r"input must have at least 1 dimensions .*got 0"),
    ("spatial_dropout on 2 dims", lambda: F.spatial_dropout(X2, 0.5), ValueError, r"at least 3 dimensions \(N, C, \*spatial\), got 2"),
    ("spatial_dropout on 1 dim", lambda: F.spatial_dropout(torch.ones(3), 0.5), ValueError, r"at least 3 dimensions .*got 1"),
    ("embedding_dropout on 1 dim", lambda: F.embedding_dropout(torch.ones(3), 0.1), ValueError, r"weight must have 2 dimensions \(num_embeddings, embedding_dim\), got 1"),
    ("targeted_dropout on 1 dim", lambda: F.targeted_dropout(torch.ones(3), 0.5, 0.5), ValueError, r"weight must have at least 2 dimensions \(out, in, \*kernel\), got 1"),
    ("DropBlock2d on 3 dims", lambda: dk.DropBlock2d(0.1, 3)(X3), ValueError, r"4 dimensions \(N, C, H, W\) for DropBlock2d; add a batch dimension"),
    ("DropBlock3d on 4 dims", lambda: dk.DropBlock3d(0.1, 3)(X4), ValueError, r"5 dimensions \(N, C, D, H, W\) for DropBlock3d; add a batch dimension"),
    ("SpatialDropout1d on 4 dims", lambda: dk.SpatialDropout1d(0.5)(X4), ValueError, r"3 dimensions \(N, C, L\) for SpatialDropout1d, got 4"),
    ("SpatialDropout2d on 3 dims", lambda: dk.SpatialDropout2d(0.5)(X3), ValueError, r"4 dimensions \(N, C, H, W\) for SpatialDropout2d"),
    ("SpatialDropout3d on 4 dims", lambda: dk.SpatialDropout3d(0.5)(X4), ValueError, r"5 dimensions \(N, C, D, H, W\) for SpatialDropout3d"),
    ("SpatialConcreteDropout on 2 dims", lambda: dk.SpatialConcreteDropout(nn.Conv2d(3, 3, 1))(X2), ValueError, r"at least 3 dimensions"),
    ("drop_connect_gaussian with no samples", lambda: F.drop_connect_gaussian(X2, WEIGHT, None, 0.5, samples=0), ValueError, "samples must be an int >= 1, got 0"),
    # Generators.
    ("generator as a str", lambda: F.dropout(X2, 0.5, generator="cpu"), TypeError, "generator must be a torch.Generator or None, got 'cpu'"),
    ("generator as a seed", lambda: F.dropout(X2, 0.5, generator=0), TypeError, "generator must be a torch.Generator or None, got 0"),
    ("generator on another device", lambda: F.dropout(META, 0.5, generator=torch.Generator()), ValueError, "generator is on device cpu, but the input is on meta"),
    ("drop_path generator device", lambda: F.drop_path(META, 0.5, generator=torch.Generator()), ValueError, "generator is on device cpu"),
    ("spatial generator device", lambda: F.spatial_dropout(torch.ones(2, 3, 4, device="meta"), 0.5, generator=torch.Generator()), ValueError, "generator is on device cpu"),
    ("gaussian generator device", lambda: F.gaussian_dropout(META, 0.5, generator=torch.Generator()), ValueError, "generator is on device cpu"),
    ("targeted generator type", lambda: F.targeted_dropout(WEIGHT, 0.5, 0.5, generator="g"), TypeError, "generator must be a torch.Generator or None"),
    # broadcast_dims.
    ("Dropout broadcast_dims float", lambda: dk.Dropout(0.5, broadcast_dims=1.0), TypeError, r"broadcast_dims must be an int or a sequence of ints, got 1\.0 \(float\)"),
    ("Dropout broadcast_dims str", lambda: dk.Dropout(0.5, broadcast_dims="01"), TypeError, "broadcast_dims must be an int or a sequence of ints, got '01'"),
    ("Dropout broadcast_dims bool", lambda: dk.Dropout(0.5, broadcast_dims=True), TypeError, "broadcast_dims must be an int or a sequence of ints, got True"),
    ("Dropout broadcast_dims None", lambda: dk.Dropout(0.5, broadcast_dims=None), TypeError, r"broadcast_dims must be an int or a sequence of ints, got None \(NoneType\)"),
    ("Dropout broadcast_dims of floats", lambda: dk.Dropout(0.5, broadcast_dims=(0, 1.0)), TypeError, r"broadcast_dims must contain ints, got \(0, 1\.0\)"),
    ("Dropout broadcast_dims of bools", lambda: dk.Dropout(0.5, broadcast_dims=[True]), TypeError, r"broadcast_dims must contain ints, got \[True\]"),
    ("Dropout broadcast_dims out of range", lambda: dk.Dropout(0.5, broadcast_dims=5)(X2), ValueError, "broadcast_dims has dim 5, out of range for a tensor with 2 dimensions"),
    ("dropout broadcast_dims float", lambda: F.dropout(X2, 0.5, broadcast_dims=1.0), TypeError, r"broadcast_dims must be an int or a sequence of ints, got 1\.0"),
    ("dropout broadcast_dims tensor", lambda: F.dropout(X2, 0.5, broadcast_dims=torch.tensor([0])), TypeError, "broadcast_dims must be an int or a sequence of ints"),
    ("dropout broadcast_dims repeated", lambda: F.dropout(X2, 0.5, broadcast_dims=(0, -2)), ValueError, r"broadcast_dims repeats a dimension: \(0, -2\)"),
    ("dropout broadcast_dims too negative", lambda: F.dropout(X2, 0.5, broadcast_dims=-3), ValueError, "broadcast_dims has dim -3, out of range"),
    # Other hyper-parameters.
    ("drop_block block_size 0", lambda: F.drop_block(X4, 0.1, 0), ValueError, "block_size must be an int >= 1, got 0"),
    ("drop_block block_size float", lambda: F.drop_block(X4, 0.1, 3.0), TypeError, r"block_size must be an int >= 1 or a sequence of ints, got 3\.0"),
    ("drop_block block_size 3 dims for 2", lambda: F.drop_block(X4, 0.1, (3, 3, 3)), ValueError, r"block_size must be an int or 2 ints \(one per spatial dim\), got \(3, 3, 3\)"),
    ("DropBlock2d block_size str", lambda: dk.DropBlock2d(0.1, "3"), TypeError, "block_size must be an int >= 1 or a sequence of ints, got '3'"),
    ("drop_path mode", lambda: F.drop_path(X2, 0.1, mode="col"), ValueError, "mode must be one of 'row', 'batch', got 'col'"),
    ("DropPath mode", lambda: dk.DropPath(0.1, mode="x"), ValueError, "mode must be one of 'row', 'batch', got 'x'"),
    ("drop_path_residual branch", lambda: F.drop_path_residual(X2, 3, 0.1), TypeError, "branch must be a callable .*got 3"),
    ("drop_path_residual branch shape", lambda: F.drop_path_residual(X2, lambda t: t[:, :2], 0.1), ValueError, "branch must return a tensor shaped like its input"),
    ("DropPathResidual branch", lambda: dk.DropPathResidual(3), TypeError, "branch must be a callable .*got 3"),
    ("locked_dropout batch_first int", lambda: F.locked_dropout(X3, 0.5, batch_first=1), TypeError, "batch_first must be a bool, got 1"),
    ("LockedDropout batch_first str", lambda: dk.LockedDropout(0.5, batch_first="yes"), TypeError, "batch_first must be a bool, got 'yes'"),
    ("gaussian_noise std negative", lambda: F.gaussian_noise(X2, -1.0), ValueError, r"std must be a finite number >= 0, got -1\.0"),
    ("gaussian_noise std NaN", lambda: F.gaussian_noise(X2, math.nan), ValueError, "std must be a finite number >= 0, got nan"),
    ("gaussian_noise std inf", lambda: F.gaussian_noise(X2, math.inf), ValueError, "std must be a finite number >= 0, got inf"),
    ("gaussian_noise std str", lambda: F.gaussian_noise(X2, "0.1"), TypeError, r"std must be a non-negative number, got '0\.1' \(str\)"),
    ("GaussianNoise std None", lambda: dk.GaussianNoise(None), TypeError, r"std must be a non-negative number, got None"),
    ("GaussianNoise std bool", lambda: dk.GaussianNoise(True), TypeError, r"std must be a non-negative number, got True \(bool\)"),
    ("GaussianNoise without std", lambda: dk.GaussianNoise(), TypeError, "missing 1 required positional argument: 'std'"),
    ("GaussianNoise.std =", lambda: setattr(dk.GaussianNoise(0.1), "std", -2), ValueError, "std must be a finite number >= 0, got -2"),
    ("targeted_dropout mode", lambda: F.targeted_dropout(WEIGHT, 0.5, 0.5, mode="row"), ValueError, "mode must be one of 'weight', 'unit', got 'row'"),
    ("targeted_mask mode", lambda: targeted_mask(WEIGHT, 0.5, "rows"), ValueError, "mode must be one of 'weight', 'unit', got 'rows'"),
    ("TargetedDropout module", lambda: dk.TargetedDropout(3), TypeError, r"TargetedDropout wraps an nn\.Linear or nn\.Conv1d/2d/3d, got int"),
    ("TargetedDropout mode", lambda: dk.TargetedDropout(nn.Linear(2, 2), mode="x"), ValueError, "mode must be one of 'weight', 'unit', got 'x'"),
    ("DropConnect module", lambda: dk.DropConnect(3), TypeError, r"DropConnect wraps an nn\.Linear or nn\.Conv1d/2d/3d, got int"),
    ("DropConnect without weight", lambda: dk.DropConnect(nn.ReLU()), TypeError, "DropConnect wraps .* got ReLU"),
    ("DropConnect inference", lambda: dk.DropConnect(nn.Linear(2, 2), inference="x"), ValueError, "inference must be one of 'mean', 'gaussian', got 'x'"),
    ("DropConnect samples", lambda: dk.DropConnect(nn.Linear(2, 2), samples=0), ValueError, "samples must be an int >= 1, got 0"),
    ("DropConnect samples bool", lambda: dk.DropConnect(nn.Linear(2, 2), samples=True), TypeError, r"samples must be an int >= 1, got True \(bool\)"),
    ("EmbeddingDropout module", lambda: dk.EmbeddingDropout(nn.Linear(2, 2)), TypeError, "EmbeddingDropout wraps an nn.Embedding, got Linear"),
    ("WeightDrop parameter missing", lambda: dk.WeightDrop(nn.Linear(2, 2)), ValueError, "weights names 'weight_hh_l0', which Linear does not have; its parameters are: bias, weight"),
    ("WeightDrop unknown weight", lambda: dk.WeightDrop(nn.LSTM(2, 2), weights=("nope",)), ValueError, "weights names 'nope', which LSTM does not have"),
    ("ConcreteDropout module", lambda: dk.ConcreteDropout(3), TypeError, "ConcreteDropout wraps an nn.Module, got int"),
    ("ConcreteDropout init_p 0", lambda: dk.ConcreteDropout(nn.Linear(2, 2), init_p=0.0), ValueError, r"init_p must be a probability strictly between 0 and 1, got 0\.0"),
    ("ConcreteDropout temperature", lambda: dk.ConcreteDropout(nn.Linear(2, 2), temperature=-1), ValueError, r"temperature must be a finite number > 0, got -1\.0"),
    ("ConcreteDropout weight_regularizer", lambda: dk.ConcreteDropout(nn.Linear(2, 2), weight_regularizer="x"), TypeError, "weight_regularizer must be a non-negative number, got 'x'"),
    # Model tooling.
    ("set_dropout model", lambda: dk.set_dropout(3, 0.1), TypeError, "model must be a torch.nn.Module, got int"),
    ("set_dropout kinds", lambda: dk.set_dropout(sequential(), 0.1, kinds=["nope"]), ValueError, "kinds has unknown kind 'nope'; known kinds are"),
    ("set_dropout kinds str", lambda: dk.set_dropout(sequential(), 0.1, kinds="element"), TypeError, "kinds must be a list of strings or 'all', got the string 'element'"),
    ("dropout_sites model", lambda: dk.dropout_sites("m"), TypeError, "model must be a torch.nn.Module, got str"),
    ("check model", lambda: dk.check("m", X2), TypeError, "model must be a torch.nn.Module, got str"),
    ("prune model", lambda: dk.prune(3), TypeError, "model must be a torch.nn.Module, got int"),
    ("apply_policy policy", lambda: dk.apply_policy(sequential(), "recommended"), TypeError, "policy must be a dropkit.Policy, got str"),
    ("DropoutScheduler schedule", lambda: dk.DropoutScheduler(sequential(), 0.5), TypeError, r"schedule must be a callable from step to rate, got 0\.5"),
    ("schedules.linear steps", lambda: dk.schedules.linear(0.1, 0.2, 0), ValueError, "steps must be an int >= 1, got 0"),
    ("schedules.early until", lambda: dk.schedules.early(0.1, 0), ValueError, "until must be an int >= 1"),
    ("widen width 0", lambda: dk.widen(0, 0.5), ValueError, "width must be an int >= 1, got 0"),
    ("widen width float", lambda: dk.widen(10.5, 0.5), TypeError, r"width must be an int >= 1, got 10\.5 \(float\)"),
    ("widen p 1", lambda: dk.widen(10, 1.0), ValueError, r"p must be below 1, got 1\.0"),
    ("depth_rates depth 0", lambda: dk.depth_rates(0.1, 0), ValueError, "depth must be an int >= 1, got 0"),
    ("depth_rates depth bool", lambda: dk.depth_rates(0.1, True), TypeError, "depth must be an int >= 1, got True"),
    ("mc_predict samples", lambda: dk.mc_predict(nn.Linear(5, 2), X2, samples=0), ValueError, "samples must be an int >= 1, got 0"),
    ("mc_predict task", lambda: dk.mc_predict(nn.Linear(5, 2), X2, task="x"), ValueError, "task must be one of 'classification', 'regression', got 'x'"),
    ("mc_predict batch_size", lambda: dk.mc_predict(nn.Linear(5, 2), X2, batch_size=0), ValueError, "batch_size must be an int >= 1, got 0"),
    ("expected_calibration_error bins", lambda: dk.expected_calibration_error(PROBS, LABELS, bins=0), ValueError, "bins must be an int >= 1, got 0"),
    ("expected_calibration_error rows", lambda: dk.expected_calibration_error(PROBS, torch.zeros(4, dtype=torch.long)), ValueError, "labels has 4 rows but probs has 3"),
    ("negative_log_likelihood eps", lambda: dk.negative_log_likelihood(PROBS, LABELS, eps=2.0), ValueError, r"eps must be a float in \(0, 1\), got 2\.0"),
    ("DropoutScheduler kinds", lambda: dk.DropoutScheduler(sequential(), dk.schedules.constant(0.1), kinds=["x"]), ValueError, "kinds has unknown kind 'x'; known kinds are"),
    ("DropoutScheduler model", lambda: dk.DropoutScheduler(3, dk.schedules.constant(0.1)), TypeError, "model must be a torch.nn.Module, got int"),
    ("DropoutScheduler names str", lambda: dk.DropoutScheduler(sequential(), dk.schedules.constant(0.1), names="1"), TypeError, "names must be a list of strings, got the string '1'"),
    ("mc_dropout kinds", lambda: dk.mc_dropout(sequential(), kinds=["x"]).__enter__(), ValueError, "kinds has unknown kind 'x'"),
    ("set_dropout names", lambda: dk.set_dropout(sequential(), 0.1, names=["nope"]), ValueError, "names entry 'nope' matches no dropout site; sites are: 1"),
    ("apply_policy model", lambda: dk.apply_policy(3, dk.Policy()), TypeError, "model must be a torch.nn.Module, got int"),
    ("mc_predict input type", lambda: dk.mc_predict(sequential(), "x"), TypeError, "x must be a tensor, a tuple of tensors or a mapping of tensors"),
    ("expected_calibration_error probs type", lambda: dk.expected_calibration_error("p", LABELS), TypeError, "probs must be a torch.Tensor, got str"),
    ("negative_log_likelihood float labels", lambda: dk.negative_log_likelihood(PROBS, torch.zeros(3)), ValueError, "labels must be a 1-dimensional integer tensor of classes"),
    ("widen width bool", lambda: dk.widen(True, 0.5), TypeError, r"width must be an int >= 1, got True \(bool\)"),
    ("drop_path_residual mode", lambda: F.drop_path_residual(X2, torch.relu, 0.1, mode="x"), ValueError, "mode must be one of 'row', 'batch', got 'x'"),
    ("embedding_dropout on int64", lambda: F.embedding_dropout(WEIGHT.long(), 0.1), TypeError, "weight must be a floating-point tensor .*torch.int64"),
    ("drop_connect on int64", lambda: F.drop_connect(WEIGHT.long(), 0.1), TypeError, "weight must be a floating-point tensor .*torch.int64"),
    ("drop_connect_gaussian on int64", lambda: F.drop_connect_gaussian(X2.long(), WEIGHT, None, 0.5), TypeError, "input must be a floating-point tensor .*torch.int64"),
    # The dropout doctor.
    ("tune empty space", lambda: dk.tune(lambda rates: 0.0, {}), ValueError, r"space must be a non-empty dict of name -> \(low, high\), got \{\}"),
    ("tune space not a pair", lambda: dk.tune(lambda rates: 0.0, {"a": 0.5}), ValueError, r"space\['a'\] must be a \(low, high\) pair, got 0\.5"),
    ("load_history missing file", lambda: dk.load_history("/no/such/history.csv"), ValueError, "/no/such/history.csv does not exist"),
    ("diagnose a number", lambda: dk.diagnose(3), ValueError, "history must be a History, a list of per-epoch dicts or a mapping of columns, got int"),
    ("diagnose metric", lambda: dk.diagnose(HISTORY, metric="f1"), ValueError, "metric 'f1' is not in history: it holds acc"),
    ("tune space reversed", lambda: dk.tune(lambda rates: 0.0, {"a": (0.5, 0.1)}), ValueError, r"space\['a'\] has low 0\.5 above high 0\.1"),
    ("tune direction", lambda: dk.tune(lambda rates: 0.0, {"a": (0.1, 0.5)}, direction="up"), ValueError, "direction must be one of 'minimize', 'maximize', got 'up'"),
    ("tune n_trials", lambda: dk.tune(lambda rates: 0.0, {"a": (0.1, 0.5)}, n_trials=0), ValueError, "n_trials must be an int >= 1, got 0"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [pytest.param(call, error, message, id=case) for case, call, error, message in CASES],
)
def test_bad_input_is_refused_with_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(
    ("call", "name", "value", "error", "message"),
    [
        pytest.param(call, name, value, error, message, id=f"{taker}: {kind}")
        for taker, call, name in RATE_TAKERS
        for kind, value, error, message in BAD_RATES
        if not (value is None and taker in OPTIONAL)
    ],
)
def test_bad_rate_is_refused_naming_the_argument(call, name, value, error, message):
    with pytest.raises(error, match=rf"^{name} must be {message}"):
        call(value)


@pytest.mark.parametrize(
    "call", [pytest.param(call, id=taker) for taker, call, _name in RATE_TAKERS]
)
def test_every_real_number_type_is_a_rate(call):
    for _kind, value in GOOD_RATES:
        call(value)


@pytest.mark.parametrize("kind", ["numpy float32", "numpy float64", "numpy float16", "Fraction"])
def test_a_numpy_or_fraction_rate_is_the_same_rate(kind):
    value = dict(GOOD_RATES)[kind]
    assert dk.Dropout(value).p == 0.25 and type(dk.Dropout(value).p) is float
    torch.manual_seed(0)
    expected = F.dropout(torch.ones(64), 0.25)
    torch.manual_seed(0)
    assert torch.equal(F.dropout(torch.ones(64), value), expected)


# The rule for defaults, one line per rate module: 0.5 for what drops elements, units or channels
# (as torch.nn.Dropout), 0.1 where one draw drops a whole block, path or word. Modules that wrap
# another module get it as their only argument.
DEFAULT_RATES = [
    (dk.Dropout, (), 0.5),
    (dk.GaussianDropout, (), 0.5),
    (dk.AlphaDropout, (), 0.5),
    (dk.SpatialDropout1d, (), 0.5),
    (dk.SpatialDropout2d, (), 0.5),
    (dk.SpatialDropout3d, (), 0.5),
    (dk.LockedDropout, (), 0.5),
    (dk.DropConnect, (nn.Linear(2, 2),), 0.5),
    (dk.WeightDrop, (nn.LSTM(2, 2),), 0.5),
    (dk.DropBlock2d, (), 0.1),
    (dk.DropBlock3d, (), 0.1),
    (dk.DropPath, (), 0.1),
    (dk.DropPathResidual, (nn.Identity(),), 0.1),
    (dk.EmbeddingDropout, (nn.Embedding(4, 2),), 0.1),
    (dk.ConcreteDropout, (nn.Linear(2, 2),), 0.1),
    (dk.SpatialConcreteDropout, (nn.Conv2d(2, 2, 1),), 0.1),
]


@pytest.mark.parametrize(
    ("module", "arguments", "rate"),
    [pytest.param(*row, id=row[0].__name__) for row in DEFAULT_RATES],
)
def test_every_rate_module_builds_with_its_default_rate(module, arguments, rate):
    assert module(*arguments).p == pytest.approx(rate, abs=1e-6)


def test_the_default_rule_covers_every_public_rate_module():
    public = {
        getattr(dk, name)
        for name in dk.__all__
        if isinstance(getattr(dk, name), type) and issubclass(getattr(dk, name), RateModule)
    }
    # TargetedDropout's rate p (the paper's alpha, default 0.5) has targeted_fraction beside it.
    assert public - {dk.TargetedDropout} == {row[0] for row in DEFAULT_RATES}
    assert dk.TargetedDropout(nn.Linear(2, 2)).p == 0.5


@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0, 0), (2, 0, 3)])
@pytest.mark.parametrize("mode", ["weight", "unit"])
def test_targeted_dropout_returns_an_empty_weight(shape, mode):
    weight = torch.ones(shape)
    assert F.targeted_dropout(weight, 0.5, 1.0, mode=mode) is weight
    assert targeted_mask(weight, 0.5, mode).shape == weight.shape
    assert not targeted_mask(weight, 0.5, mode).any()
