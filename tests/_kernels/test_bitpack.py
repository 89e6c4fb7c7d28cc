import pytest
import torch

from dropkit._kernels.bitpack import pack_bits, unpack_bits


@pytest.mark.parametrize("shape", [(1,), (7,), (8,), (9,), (3, 5, 7), (64, 33)])
def test_round_trip(shape):
    generator = torch.Generator().manual_seed(0)
    mask = torch.rand(shape, generator=generator) < 0.4
    packed = pack_bits(mask)
    assert packed.dtype == torch.uint8
    assert unpack_bits(packed, shape).dtype == torch.bool
    assert packed.numel() == -(-mask.numel() // 8)  # one bit per element
    assert torch.equal(unpack_bits(packed, shape), mask)


def test_bit_order_is_least_significant_first():
    mask = torch.tensor([True, False, False, False, False, False, False, False, False, True])
    assert pack_bits(mask).tolist() == [1, 2]
