"""Split in its attribute, input and num_outputs forms."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import helper

from regionaudit.errors import RejectedModel

from .helpers import I64, ok


@pytest.mark.parametrize("opset", [7, 11, 13, 18, NEWEST_OPSET])
def test_split_attribute_and_input_forms(convert, opset):
    if opset >= 18:
        split = helper.make_node("Split", ["r", "sp"], ["a", "b", "c"], axis=-1)
        inits = {"sp": np.array([1, 3, 2], I64)}
    elif opset >= 13:
        split = helper.make_node("Split", ["r", "sp"], ["a", "b", "c"], axis=3)
        inits = {"sp": np.array([1, 3, 2], I64)}
    else:
        split = helper.make_node("Split", ["r"], ["a", "b", "c"], axis=3, split=[1, 3, 2])
        inits = {}
    nodes = [helper.make_node("Relu", ["x"], ["r"]), split, helper.make_node("Sub", ["c", "a"], ["d"]),
             helper.make_node("Concat", ["b", "d", "a"], ["y"], axis=3)]
    ok(convert(nodes, [1, 2, 3, 6], inits, opset), "take")


@pytest.mark.parametrize("opset", [18, NEWEST_OPSET])
def test_split_num_outputs(convert, opset):
    split = helper.make_node("Split", ["r"], ["a", "b"], axis=1, num_outputs=2)
    nodes = [helper.make_node("Relu", ["x"], ["r"]), split, helper.make_node("Sub", ["a", "b"], ["y"])]
    ok(convert(nodes, [1, 4, 3], {}, opset))


SIZES_THAT_DO_NOT_COVER_THE_AXIS = [  # (opset, split sizes or None, outputs) on an axis of 5
    (11, [1, 2], 2),
    (13, [3, 4], 2),
    (18, [1, 2, 2], 2),
    (11, None, 2),  # equal parts that 5 is not a multiple of
    (13, None, 2),
    (18, None, 4),  # parts of 2: the fourth would be negative
]


@pytest.mark.parametrize("opset,sizes,outputs", SIZES_THAT_DO_NOT_COVER_THE_AXIS)
def test_split_sizes_that_do_not_cover_the_axis_are_refused(convert, opset, sizes, outputs):
    """onnxruntime refuses such a model; it is refused with the Split named, not imported."""
    names = [f"o{i}" for i in range(outputs)]
    inits, kwargs = {}, {"num_outputs": outputs} if opset >= 18 and sizes is None else {}
    if sizes is not None and opset >= 13:
        inits["sp"] = np.array(sizes, I64)
    elif sizes is not None:
        kwargs["split"] = sizes
    split = helper.make_node("Split", ["r"] + (["sp"] if inits else []), names, axis=-1, **kwargs)
    nodes = [helper.make_node("Relu", ["x"], ["r"]), split, helper.make_node("Relu", ["o0"], ["y"])]
    with pytest.raises(RejectedModel, match="Split .*(does not cut|cannot be split)"):
        convert(nodes, [1, 3, 5], inits, opset)
