"""The one-pass kernel for masks shared along leading dims (drop_path rows, spatial maps)."""

import pytest
import torch

from dropkit._kernels import build
from dropkit._kernels.masks import apply_keep_mask

pytestmark = pytest.mark.skipif(
    not build.cpu_kernels_available(), reason="no C++ compiler: the compiled path is unavailable"
)


@pytest.fixture
def cpu():
    from dropkit._kernels import cpu

    return cpu


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("mask_shape", [(6, 1, 1), (6, 5, 1), (1, 1, 1), (6, 5, 7000)])
def test_kernel_equals_where(cpu, dtype, mask_shape):
    x = torch.randn(6, 5, 7000).to(dtype)
    x[0, 0, 0] = float("inf")
    keep = torch.rand(mask_shape, generator=torch.Generator().manual_seed(1)) < 0.5
    keep.view(-1)[0] = False
    out = cpu.row_dropout(x, keep, 1 / 0.7)
    assert out.dtype == dtype and out.shape == x.shape
    assert torch.equal(out, apply_keep_mask(x, keep, 1 / 0.7))
    assert not out.isnan().any()


def test_kernel_refuses_a_mask_that_splits_rows(cpu):
    with pytest.raises(
        RuntimeError, match=r"must broadcast against x \(x.s dims, each of x.s size or 1\)"
    ):
        cpu.row_dropout(torch.ones(10), torch.ones(3, dtype=torch.bool), 1.0)
    with pytest.raises(RuntimeError, match="expects a bool mask"):
        cpu.row_dropout(torch.ones(10), torch.ones(2), 1.0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("mask_shape", [(4, 1, 1, 1), (4, 6, 1, 1)])
def test_every_layout_gives_the_same_values_in_its_own_format(cpu, mask_shape, dtype):
    x = torch.randn(4, 6, 9, 11).to(dtype)
    x[0, 0, 0, 0] = float("inf")  # in a dropped row: an exact zero in every layout
    keep = torch.rand(mask_shape, generator=torch.Generator().manual_seed(2)) < 0.5
    keep.view(-1)[0] = False
    expected = apply_keep_mask(x, keep, 2.0)
    for name, y in (
        ("channels_last", x.contiguous(memory_format=torch.channels_last)),
        ("transposed", x.transpose(0, 3).contiguous().transpose(0, 3)),
        ("strided", torch.stack([x, x], -1)[..., 1]),
    ):
        out = cpu.row_dropout(y, keep, 2.0)
        assert torch.equal(out, expected), name
        if name != "strided":
            assert out.stride() == y.stride(), name


def test_output_is_fresh_and_empty_inputs_work(cpu):
    x = torch.randn(64, 1024)
    keep = torch.ones(64, 1, dtype=torch.bool)
    out = cpu.row_dropout(x, keep, 1.0)
    assert out.data_ptr() != x.data_ptr() and out._base is None
    out += 1  # an in-place op after the kernel
    assert cpu.row_dropout(torch.ones(0, 3), torch.ones(0, 1, dtype=torch.bool), 1.0).shape == (
        0,
        3,
    )


@pytest.mark.parametrize(
    ("shape", "mask_shape", "memory_format"),
    [
        ((2, 3, 150, 150), (2, 3, 1, 1), torch.channels_last),  # many runs of three channels
        # short lines tiled in blocks, threads splitting a sample, a partial last block
        ((3, 5, 97, 101), (3, 5, 1, 1), torch.channels_last),
        ((2, 700, 9, 9), (2, 700, 1, 1), torch.channels_last),  # lines longer than a tile
        ((2, 3, 150, 150), (2, 1, 1, 1), torch.channels_last),  # one run per sample
        ((2, 40000, 1, 1), (2, 1, 1, 1), torch.contiguous_format),  # runs split into pieces
        ((3, 6, 5, 11), (1, 6, 1, 11), torch.channels_last),  # a mask over inner dims
    ],
)
def test_runs_pieces_and_inner_masks_match_where(cpu, shape, mask_shape, memory_format):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    x = x.contiguous(memory_format=memory_format)
    keep = torch.rand(mask_shape, generator=torch.Generator().manual_seed(4)) < 0.5
    out = cpu.row_dropout(x, keep, 1.5)
    assert torch.equal(out, apply_keep_mask(x, keep, 1.5))
    assert out.stride() == x.stride()


def test_kernel_refuses_a_mask_that_does_not_broadcast(cpu):
    with pytest.raises(
        RuntimeError, match=r"must broadcast against x \(x.s dims, each of x.s size or 1\)"
    ):
        cpu.row_dropout(torch.ones(4, 6), torch.ones(4, 3, dtype=torch.bool), 1.0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    ("mask_shape", "memory_format"),
    [
        ((4, 1, 1, 1), torch.contiguous_format),  # drop_path: whole runs scaled
        ((4, 16, 1, 1), torch.channels_last),  # spatial dropout: runs of channels selected
        ((4, 16, 1, 1), torch.contiguous_format),
    ],
)
def test_every_half_precision_value_is_rounded_as_torch_does(cpu, dtype, mask_shape, memory_format):
    # all 65536 bit patterns (normals, subnormals, infinities, NaNs, both zeros), shuffled so
    # that every kind of value meets both kept and dropped rows and every vector lane
    patterns = torch.arange(65536, dtype=torch.int32).to(torch.int16).view(dtype)
    order = torch.randperm(65536, generator=torch.Generator().manual_seed(0))
    x = patterns[order].reshape(4, 16, 32, 32).contiguous(memory_format=memory_format)
    keep = torch.rand(mask_shape, generator=torch.Generator().manual_seed(1)) < 0.6
    out = cpu.row_dropout(x, keep, 1 / 0.7)
    expected = apply_keep_mask(x, keep, 1 / 0.7)
    same = (out.view(torch.int16) == expected.view(torch.int16)) | (out.isnan() & expected.isnan())
    assert bool(same.all()), int((~same).sum())
