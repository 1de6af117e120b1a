"""Resolve a model or tokenizer reference: a local directory, an object-storage URI, or a Hugging Face hub id.

Real KoBERT weights live on the hub (`skt/kobert-base-v1`). Machines without internet must get them some
other way, so a failed download says exactly how instead of surfacing a stack of connection errors.

A driver pins a reference once (`pin`): a hub id to the commit it resolved (`owner/name@<commit>`), a URI to
the digest of its files (`s3://…#sha256=<hex>`, see `model_store`). Every node then resolves the pinned form
and loads exactly what the driver checked and the manifest records, even if the hub's main branch or the
bucket moves on meanwhile.
"""

from __future__ import annotations

import os
from pathlib import Path

from kobert_ops import model_store
from kobert_ops.safe_weights import check_pickled_weights, loads_pickled_weights


# What a tokenizer may need from a hub repository: tokenizer.json, vocab.txt (WordPiece), vocab.json and
# merges.txt (BPE), SentencePiece *.model, and the configs. A model adds its weights (a `kobert export` folder: its
# top-level graph; a hub repository's other ONNX files are not fetched with a PyTorch model).
TOKENIZER_FILES = ["tokenizer.json", "vocab.txt", "merges.txt", "*.model", "*.json", "*.txt"]
MODEL_FILES = [*TOKENIZER_FILES, "*.safetensors", "*.bin", "model.onnx", "model.xml"]  # model.bin: "*.bin"


class ModelNotAvailableError(RuntimeError):
    """A hub id could not be downloaded (offline, unknown id, or no access)."""


def looks_like_hub_id(reference: str) -> bool:
    """True for `owner/name` (or a pinned `owner/name@revision`) strings that are not an existing local path."""
    if os.path.exists(reference) or model_store.is_uri(reference):
        return False
    parts = reference.split("/")
    return len(parts) == 2 and all(parts) and not reference.startswith((".", "~"))


def split_revision(reference: str) -> tuple[str, str | None]:
    """(`owner/name`, revision) of a hub id; revision None when not pinned."""
    repo, _, revision = reference.partition("@")
    return repo, revision or None


def pin(reference: str | os.PathLike, allow_patterns: list[str] | None = None) -> str:
    """The reference every node should load: a hub id at the commit resolved now, a URI with its digest;
    a local folder or a preset name unchanged."""
    reference = str(reference)
    if model_store.is_uri(reference):
        return model_store.pin(reference, MODEL_FILES)
    if looks_like_hub_id(reference) and not Path(reference).expanduser().is_dir():
        repo, _ = split_revision(reference)
        return f"{repo}@{resolve(reference, allow_patterns).name}"  # the hub cache's snapshots/<commit> folder
    return reference


def resolve(reference: str | os.PathLike, allow_patterns: list[str] | None = None) -> Path:
    """Return a local directory for `reference` (see `find`); one whose pickled weights hold more than
    tensors is refused before anything loads them (`safe_weights`).

    Raises:
        safe_weights.UnsafeCheckpointError: a planted `pytorch_model.bin`.
        FileNotFoundError, model_store.ModelChangedError, ModelNotAvailableError: see `find`.
    """
    directory = find(reference, allow_patterns)
    if loads_pickled_weights(allow_patterns):
        check_pickled_weights(directory, str(reference))
    return directory


def find(reference: str | os.PathLike, allow_patterns: list[str] | None = None) -> Path:
    """Return a local directory for `reference`, downloading a hub id through the Hugging Face cache.

    Raises:
        FileNotFoundError: `reference` is neither an existing directory, nor a URI with a model, nor a hub id.
        model_store.ModelChangedError: a pinned URI's files changed since the pin.
        ModelNotAvailableError: the hub download failed; the message says how to get the files offline.
    """
    reference = str(reference)
    if model_store.is_uri(reference):  # one pattern set for URIs: model and tokenizer share one cached copy
        return model_store.fetch(reference, MODEL_FILES)
    path = Path(reference).expanduser()
    if path.is_dir():
        return path
    if not looks_like_hub_id(reference):
        raise FileNotFoundError(f"model/tokenizer path not found: {reference} (no such folder, and not a hub id "
                                "owner/name); check the path")
    parent = Path(reference.partition("@")[0]).parent
    if parent.is_dir():  # `models/my-model` beside an existing `models/`: a folder the user meant
        raise FileNotFoundError(f"no model folder {reference} ({parent}/ exists, but holds no {path.name}); "
                                "check the path, or pass a hub id as owner/name")
    from huggingface_hub import snapshot_download

    repo, revision = split_revision(reference)
    try:
        return Path(snapshot_download(repo_id=repo, revision=revision, allow_patterns=allow_patterns))
    except Exception as error:  # the hub raises many kinds: offline, DNS, 401, 404
        raise ModelNotAvailableError(offline_help(reference, error)) from error


def offline_help(reference: str, error: BaseException) -> str:
    """The one line a user sees when a hub id cannot be fetched (the full reference, what to do)."""
    repo = reference.partition("@")[0]
    return (f"could not download '{reference}' from the Hugging Face hub ({type(error).__name__}), and there "
            f"is no local folder {reference} either; offline, run `hf download {repo} --local-dir "
            f"./{repo.split('/')[-1]}` on a machine with internet, copy that folder here and pass its path "
            "(or fill the hub cache and set HF_HUB_OFFLINE=1)")
