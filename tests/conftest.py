"""Fixtures shared across the suite: a tiny real-format CIFAR-10 folder, and folders of
random PNGs."""

import atexit
import fcntl
import os
import pickle
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Training with metrics caches reference features: never in the user's ~/.cache/gankit.
# Each pytest process (and xdist worker) makes its own, and removes it when it exits.
os.environ["GANKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="gankit-test-cache-")
atexit.register(shutil.rmtree, os.environ["GANKIT_CACHE_DIR"], ignore_errors=True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
               "ship", "truck"]


def write_cifar_folder(root, per_batch=10, seed=0):
    """Write a real-format ``cifar-10-batches-py`` folder; every other image is a frog."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [6 if i % 2 == 0 else (i % 10 if i % 10 != 6 else 0) for i in range(per_batch)]
        batch = {b"batch_label": name.encode(), b"labels": labels,
                 b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"filenames": [b"f%d.png" % i for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps(
        {b"label_names": [n.encode() for n in CLASS_NAMES], b"num_vis": 3072}, protocol=2))
    return folder


@pytest.fixture
def cifar_folder(tmp_path):
    return write_cifar_folder(tmp_path / "data")


@pytest.fixture(scope="session")
def make_cifar_folder():
    """``write_cifar_folder`` for module- or session-scoped fixtures (importing it from
    ``conftest`` is ambiguous when several test folders run together)."""
    return write_cifar_folder


def write_image_folder(folder, count, size, seed=0):
    """Write ``count`` random RGB PNGs of ``size`` x ``size`` (``00.png``, ...) into
    ``folder`` (created) and return it."""
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            folder / f"{i:02d}.png")
    return folder


@pytest.fixture(scope="session")
def make_image_folder():
    """``write_image_folder`` for module-scoped fixtures."""
    return write_image_folder


@pytest.fixture(scope="session")
def build_once(tmp_path_factory):
    """``build_once(name, make)``: the folder ``name``, filled by ``make(folder)`` once per
    test session and shared by all pytest-xdist workers (the first to ask builds it under a
    file lock; the others wait for it). Expensive artefacts -- trained reference runs, a
    venv -- are built once instead of once per worker. Never modify what it returns: copy it.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder above the workers' popen-gwN folders
    root = root / "built-once"
    root.mkdir(exist_ok=True)

    def build(name, make):
        folder, done = root / name, root / f"{name}.done"
        with open(root / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            if not done.exists():
                shutil.rmtree(folder, ignore_errors=True)  # a build that failed part way
                folder.mkdir()
                make(folder)  # built where it stays: run directories record their path
                done.write_text("")
        return folder

    return build


# Test files whose tests take longest (seconds of test time, summed, from a full run): they
# start first, so that no minute-long test begins last and leaves the other xdist worker
# idle at the end. Only whole files move (their module fixtures are set up once), and the
# order inside a file is kept.
SLOW_FIRST = [
    "tests/distribute/test_multi_worker.py",  # one 80-s test
    "tests/plugins_api/test_fresh_venv.py",
    "tests/reliability/test_kill_and_resume.py",
    "tests/distribute/test_mirrored.py",
    "tests/test_end_to_end.py",
    "tests/reliability/test_hardening3.py",
    "tests/reliability/test_hardening.py",
    "tests/cli/test_sweep.py",
    "tests/reliability/test_failures.py",
    "tests/plugins_api/test_conformance_builtins.py",
    "tests/training/test_precision.py",
]


@pytest.hookimpl(trylast=True)  # after any shuffling plugin: a stable sort keeps its order
def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    root = config.rootpath

    def place(item):
        try:
            name = item.path.relative_to(root).as_posix()
        except ValueError:
            return len(rank)
        return rank.get(name, len(rank))

    items.sort(key=place)
