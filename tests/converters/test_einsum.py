"""Einsum with one constant operand; a product of two data tensors is refused; its multiply-adds."""

import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper

from regionaudit.errors import RejectedModel

from .helpers import ok, relu_then


EINSUMS = [("bij,jk->bik", (1, 3, 4), (4, 5), True), ("bij,kj", (1, 3, 4), (5, 4), True),
           ("ij,...jk->...ik", None, (1, 3, 4), False), ("bchw->bhwc", (1, 2, 3, 4), None, True),
           ("bi,i->b", (1, 6), (6,), True)]


@pytest.mark.parametrize("opset", [12, NEWEST_OPSET])
@pytest.mark.parametrize("eq,xshape,wshape,data_first", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum_with_one_constant(convert, opset, eq, xshape, wshape, data_first):
    if data_first:
        inputs, inits, shape = (["r", "w"] if wshape else ["r"]), ({"w": f32(*wshape, seed=4)} if wshape else {}), xshape
    else:
        inputs, inits, shape = ["w", "r"], {"w": f32(3, 3, seed=5)}, wshape
    node = helper.make_node("Einsum", inputs, ["o"], equation=eq)
    ok(convert(relu_then(node), list(shape), inits, opset), "einsum")


def test_einsum_of_two_data_tensors_is_a_product(convert):
    node = helper.make_node("Einsum", ["x", "x"], ["y"], equation="bi,bi->b", name="dot")
    with pytest.raises(RejectedModel, match="product or quotient of two data-dependent tensors: Einsum 'dot'"):
        convert([node], [1, 4], opset=12)


def test_einsum_macs_count_the_summed_letters(convert):
    node = helper.make_node("Einsum", ["r", "w"], ["o"], equation="bij,jk->bik")
    imported = convert(relu_then(node), [1, 3, 4], {"w": f32(4, 5, seed=4)}, 12)
    record = next(r for r in imported.nodes if r["kind"] == "einsum")
    assert record["macs"] == 3 * 5 * 4
