"""Cast: to a non-float type it is refused; to a narrower float type it is taken as exact, with a
note, and the import check allows that type's error."""

import pytest
from conftest import f32
from onnx import TensorProto, helper

from regionaudit.errors import RejectedModel


def test_cast_to_int_is_rejected(convert):
    nodes = [helper.make_node("Cast", ["x"], ["c"], to=TensorProto.INT64),
             helper.make_node("Cast", ["c"], ["y"], to=TensorProto.FLOAT)]
    with pytest.raises(RejectedModel, match="non-float type"):
        convert(nodes, [1, 5])


@pytest.mark.parametrize("to,name", [(TensorProto.FLOAT16, "float16"), (TensorProto.BFLOAT16, "bfloat16")])
@pytest.mark.parametrize("seed", range(6))
def test_cast_to_half_precision_in_the_middle(convert, to, name, seed):
    """float32 -> half -> float32 between two layers: onnxruntime rounds there, the IR does not.
    Before, the float32 tolerance accepted or refused the model depending on the check's seed."""
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Cast", ["r"], ["r16"], to=to, name="half"),
             helper.make_node("Cast", ["r16"], ["r32"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["r32", "W2"], ["y"])]
    imported = convert(nodes, [1, 6], {"W1": f32(6, 16, seed=1), "W2": f32(16, 3, seed=2)}, 13, seed=seed)
    assert 0 < imported.validation["max_rel_err"] < 8 * {"float16": 2.0**-10, "bfloat16": 2.0**-7}[name]
    assert any(n.startswith(f"Cast 'half' rounds the data to {name}") for n in imported.notes)
