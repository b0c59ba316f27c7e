"""Features of reference images cached on disk, so that each is computed once.

The cache lives in ``$GANKIT_CACHE_DIR/reference`` (default ``~/.cache/gankit/reference``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from gankit.interfaces import Features

CACHE_FORMAT = 1  # bump when what a cache file holds changes


class EvaluationWarning(UserWarning):
    """An evaluation went on, but something was off (a corrupt or unwritable cache)."""


def default_cache_dir() -> Path:
    """``$GANKIT_CACHE_DIR``, else ``~/.cache/gankit``."""
    return Path(os.environ.get("GANKIT_CACHE_DIR") or "~/.cache/gankit").expanduser()


class ReferenceCache:
    """Features of reference images on disk, so that they are computed once.

    An entry is ``<root>/<key>.npz`` (the features, and logits if any) with ``<key>.json``
    beside it (the extractor's protocol, ``n``, the source and the creation time). The key
    is the sha256 of the images' content digest, the extractor's protocol (network, weights'
    digest, layer, input size, resize) and ``n``: change any of them and the entry is not
    found. Files are written to a temporary name and renamed, so a reader never sees half a
    file; an unreadable entry is recomputed with a warning.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir() / "reference"

    @staticmethod
    def key(content_digest: str, protocol: Mapping[str, Any], n: int) -> str:
        text = json.dumps({"format": CACHE_FORMAT, "content": content_digest,
                           "extractor": protocol, "n": n}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.npz", self.root / f"{key}.json"

    def load(self, key: str, n: int) -> Features | None:
        """The cached features, or None if there are none (or they were unreadable)."""
        data_path, meta_path = self.paths(key)
        if not data_path.is_file() or not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            with np.load(data_path, allow_pickle=False) as data:
                features = np.asarray(data["features"], dtype=np.float32)
                logits = np.asarray(data["logits"], np.float32) if "logits" in data else None
            if meta.get("key") != key or features.ndim != 2 or len(features) != n or \
                    (logits is not None and len(logits) != n):
                raise ValueError("its contents do not match its key")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            warnings.warn(f"the cached reference features {data_path} are unreadable ({exc}); "
                          f"computing them again", EvaluationWarning, stacklevel=2)
            return None
        return Features(features, logits)

    def store(self, key: str, features: Features, meta: Mapping[str, Any]) -> Path | None:
        """Write an entry (warns and returns None if the cache folder is not writable)."""
        from gankit.util import atomic

        data_path, meta_path = self.paths(key)
        buffer = io.BytesIO()
        arrays = {"features": features.features}
        if features.logits is not None:
            arrays["logits"] = features.logits
        np.savez(buffer, **arrays)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic.write_bytes(data_path, buffer.getvalue())
            atomic.write_text(meta_path, json.dumps({"key": key, **meta}, indent=2,
                                                   default=str) + "\n")
        except OSError as exc:
            warnings.warn(f"cannot cache the reference features in {self.root} "
                          f"({exc.strerror or exc}); set GANKIT_CACHE_DIR to a writable folder",
                          EvaluationWarning, stacklevel=2)
            return None
        return data_path
