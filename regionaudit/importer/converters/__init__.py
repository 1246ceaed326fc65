"""One module per op family; importing them fills `registry.CONVERTERS`."""

from regionaudit.importer.converters import (  # noqa: F401
    activation,
    batchnorm,
    conv,
    elementwise,
    layout,
    matmul,
    passthrough,
    reduce,
    pool,
    reshape,
)
