"""One module per op family; importing them fills `registry.CONVERTERS`."""

from regionaudit.importer.converters import (  # noqa: F401
    activation,
    batchnorm,
    conv,
    einsum,
    elementwise,
    layout,
    matmul,
    minmax,
    passthrough,
    reduce,
    pool,
    reshape,
    resize,
    select,
)
