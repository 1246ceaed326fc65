"""One module per ONNX op, named after it (ops converted alike share a module whose name lists
them, e.g. `matmul_gemm.py`); importing them fills `registry.CONVERTERS`. Helpers that several
converters use start with an underscore."""

from regionaudit.importer.converters import (  # noqa: F401
    add_sub_mul_div_neg_sum,
    average_pool,
    batch_normalization,
    concat,
    conv,
    identity_dropout_cast,
    matmul_gemm,
    max_pool,
    pad_slice,
    reduce_mean_sum,
    relu,
    reshape_flatten,
    shape_size,
    squeeze_unsqueeze,
    transpose,
)
