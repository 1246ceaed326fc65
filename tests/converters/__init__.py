"""Converter tests: `test_<op>.py` checks `importer/converters/<op>.py` against onnxruntime.

A graph that needs several ops is tested with the first of them: Neg and data + data in
`test_add`, Tile in `test_expand`, Trilu in `test_compress`, Dropout and Cast in `test_identity`,
GlobalMaxPool in `test_global_average_pool`, Unsqueeze in `test_squeeze`. The kinks (Relu, Abs,
Clip, HardSigmoid, Shrink, Max / Min, ReduceMax / ReduceMin, ReduceL1) are in
`../test_new_kinks_exact.py`, where their knots are also checked against the reference walk; Shape
folding in `../test_importer_fold.py`.
"""
