"""Build the shipped regionaudit sample models deterministically.

Run from the repository root::

    python sample_models/build.py
    python sample_models/build.py --labels-only   # only the test data and labels, no training

Trains four small ReLU networks on CPU (single thread, fixed seeds,
deterministic algorithms, fixed-order minibatches, fixed epoch counts),
exports them to ONNX (legacy TorchScript exporter, opset 13, input "input",
output "logits", dynamic batch axis), writes held-out test data as plain
float32 ``.npy`` files (and their integer class labels, ``*_test_labels.npy``), and verifies every export against torch with
onnxruntime. All outputs are written next to this script.

Data:
  * digits: scikit-learn's bundled 8x8 digits (a copy of the UCI optdigits
    test set, 1797 images); pixel values 0..16 are divided by 16, so the
    saved test arrays are already in the model's input scale [0, 1].
  * spirals: two interleaved spirals generated with numpy (seed 0, 600 points).
"""

from __future__ import annotations

import os
import random
import sys
import time
import warnings

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 0
N_TEST_DIGITS = 300
N_SPIRALS = 600
N_TEST_SPIRALS = 200
ATOL = 1e-4


def set_determinism(seed: int = SEED) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (e.g. when imported twice)
        pass


# --------------------------------------------------------------------------- data


def load_digits_split():
    from sklearn.datasets import load_digits

    ds = load_digits()
    x = (ds.data.astype(np.float64) / 16.0).astype(np.float32)  # (1797, 64) in [0, 1]
    y = ds.target.astype(np.int64)
    perm = np.random.RandomState(SEED).permutation(len(x))
    test_idx, train_idx = perm[:N_TEST_DIGITS], perm[N_TEST_DIGITS:]
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


def make_spirals(n: int = N_SPIRALS, seed: int = SEED):
    rng = np.random.RandomState(seed)
    half = n // 2
    t = np.sqrt(rng.uniform(0.0, 1.0, size=half)) * 2.0 * np.pi * 1.5  # 1.5 turns
    r = t / (3.0 * np.pi)  # radius in [0, 1]
    a = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    b = -a  # second spiral: rotated by pi -> interleaved
    x = np.concatenate([a, b], axis=0) + rng.normal(scale=0.02, size=(2 * half, 2))
    y = np.concatenate([np.zeros(half), np.ones(half)]).astype(np.int64)
    perm = rng.permutation(2 * half)
    x, y = x[perm].astype(np.float32), y[perm]
    return (
        x[N_TEST_SPIRALS:],
        y[N_TEST_SPIRALS:],
        x[:N_TEST_SPIRALS],
        y[:N_TEST_SPIRALS],
    )


# ------------------------------------------------------------------------- models


class DigitsMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 32), nn.ReLU(),
            nn.Linear(32, 32), nn.ReLU(),
            nn.Linear(32, 10),
        )

    def forward(self, x):
        return self.net(x)


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),   # 8x8x8
            nn.AvgPool2d(2),                            # 8x4x4
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),  # 16x4x4
            nn.AvgPool2d(2),                            # 16x2x2
        )
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.relu1 = nn.ReLU()
        self.relu2 = nn.ReLU()

    def forward(self, x):
        h = self.relu1(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return self.relu2(h + x)


class DigitsResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        )
        self.block = ResBlock(8)
        self.pool = nn.MaxPool2d(2)  # 8x4x4
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        h = self.pool(self.block(self.stem(x)))
        return self.fc(torch.flatten(h, 1))


class SpiralsMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, 16), nn.ReLU(),
            nn.Linear(16, 16), nn.ReLU(),
            nn.Linear(16, 2),
        )

    def forward(self, x):
        return self.net(x)


# ----------------------------------------------------------------------- training


def train(model, x, y, *, epochs, batch_size, lr, weight_decay=0.0, seed=SEED):
    """Adam + cross-entropy with minibatch order drawn from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    n = len(xt)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen) if batch_size < n else torch.arange(n)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model


@torch.no_grad()
def accuracy(model, x, y) -> float:
    model.eval()
    pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((pred == y).mean())


# ------------------------------------------------------------------ export/verify


def export(model, example, path, *, keep_batchnorm=False):
    """Legacy (TorchScript) export. In eval mode the exporter normally fuses
    Conv+BatchNorm; ``keep_batchnorm`` disables constant folding so BatchNorm
    stays as explicit inference-form ``BatchNormalization`` nodes (running
    statistics, no training outputs) for the importer to handle."""
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            path,
            dynamo=False,
            opset_version=13,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            training=torch.onnx.TrainingMode.EVAL,
            do_constant_folding=not keep_batchnorm,
            export_params=True,
        )


def verify(model, path, x) -> float:
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load(path))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"input": x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    return float(np.abs(got - want).max())


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    t0 = time.time()
    set_determinism()

    xtr, ytr, xte, yte = load_digits_split()
    img = lambda a: a.reshape(-1, 1, 8, 8)  # noqa: E731
    sxtr, sytr, sxte, syte = make_spirals()

    np.save(os.path.join(HERE, "digits_test.npy"), np.ascontiguousarray(img(xte), np.float32))
    np.save(os.path.join(HERE, "digits_test_flat.npy"), np.ascontiguousarray(xte, np.float32))
    np.save(os.path.join(HERE, "spirals_test.npy"), np.ascontiguousarray(sxte, np.float32))
    # one integer class per test row, in the same order (for `regionaudit --labels`)
    np.save(os.path.join(HERE, "digits_test_labels.npy"), np.ascontiguousarray(yte, np.int64))
    np.save(os.path.join(HERE, "spirals_test_labels.npy"), np.ascontiguousarray(syte, np.int64))
    if "--labels-only" in argv:
        print(f"wrote test data and labels -> {HERE}")
        return 0

    # (name, ctor, train x, test x, y, y_test, train kwargs, relu units/sample)
    specs = [
        ("digits_mlp", DigitsMLP, xtr, xte, ytr, yte,
         dict(epochs=60, batch_size=64, lr=3e-3), 32 + 32),
        ("digits_cnn", DigitsCNN, img(xtr), img(xte), ytr, yte,
         dict(epochs=40, batch_size=64, lr=5e-3), 8 * 8 * 8 + 16 * 4 * 4),
        ("digits_resnet", DigitsResNet, img(xtr), img(xte), ytr, yte,
         dict(epochs=25, batch_size=64, lr=3e-3), 3 * 8 * 8 * 8),
        ("spirals_mlp", SpiralsMLP, sxtr, sxte, sytr, syte,
         dict(epochs=3000, batch_size=len(sxtr), lr=1e-2), 16 + 16),
    ]

    rows = []
    ok = True
    for i, (name, ctor, x_tr, x_te, y_tr, y_te, kw, relus) in enumerate(specs):
        torch.manual_seed(SEED + i)
        model = ctor()
        train(model, np.ascontiguousarray(x_tr), y_tr, seed=SEED + i, **kw)
        acc = accuracy(model, np.ascontiguousarray(x_te), y_te)
        path = os.path.join(HERE, f"{name}.onnx")
        export(model, torch.from_numpy(np.ascontiguousarray(x_te[:2])), path,
               keep_batchnorm=(name == "digits_resnet"))
        diff = verify(model, path, np.ascontiguousarray(x_te))
        passed = diff < ATOL
        ok &= passed
        rows.append((name, tuple(x_te.shape[1:]), relus, count_params(model), acc, diff, passed,
                     os.path.getsize(path)))

    print(f"{'model':<15} {'input':<10} {'relu':>5} {'params':>7} {'test acc':>9} "
          f"{'max|ort-torch|':>15} {'bytes':>7}")
    for name, shp, relus, params, acc, diff, passed, size in rows:
        print(f"{name:<15} {str(shp):<10} {relus:>5} {params:>7} {acc * 100:>8.2f}% "
              f"{diff:>15.2e} {size:>7} {'OK' if passed else 'FAIL'}")
    print(f"built in {time.time() - t0:.1f}s -> {HERE}")
    if not ok:
        print(f"ERROR: onnxruntime output differs from torch by >= {ATOL}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
