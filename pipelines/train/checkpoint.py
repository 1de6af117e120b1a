"""What a training checkpoint holds, and how a run resumes from one.

A checkpoint directory is a complete model directory (`model/`: config, safetensors, tokenizer — so the
best checkpoint is exported by copying it) plus `train_state.pt` (optimizer, scheduler, epoch, step) and
`history.json` (every finished epoch's metrics, so curves survive a resume).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

MODEL_DIR = "model"
STATE_FILE = "train_state.pt"
HISTORY_FILE = "history.json"


def save(directory: str | Path, model, tokenizer, optimizer, scheduler, epoch: int, global_step: int,
         history: list[dict], extra: dict) -> Path:
    """Write a checkpoint of the (unwrapped) model and the training state after `epoch`."""
    import torch

    from kobert_ops.model import save_classifier

    directory = Path(directory)
    save_classifier(model, tokenizer, directory / MODEL_DIR, extra={**extra, "epoch": epoch, "trained": True})
    state = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "global_step": global_step,
    }
    torch.save(state, directory / STATE_FILE)
    (directory / HISTORY_FILE).write_text(json.dumps(history, indent=2, ensure_ascii=False) + "\n")
    return directory


def load_weights(directory: str | Path, model) -> None:
    """Load the checkpoint's weights into `model` (same architecture and labels)."""
    from safetensors.torch import load_file

    state = load_file(str(Path(directory) / MODEL_DIR / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # save_pretrained drops tied or non-persistent tensors; anything else missing is a real mismatch
    real_missing = [name for name in missing if not name.endswith("position_ids")]
    if real_missing or unexpected:
        raise RuntimeError(f"checkpoint does not match the model: missing {real_missing}, unexpected {unexpected}")


def load_state(directory: str | Path, optimizer, scheduler) -> tuple[int, int, list[dict]]:
    """Restore optimizer and scheduler; returns (finished epoch, global step, history)."""
    import torch

    directory = Path(directory)
    state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    history = json.loads((directory / HISTORY_FILE).read_text(encoding="utf-8"))
    return int(state["epoch"]), int(state["global_step"]), history


def read_history(directory: str | Path) -> list[dict]:
    return json.loads((Path(directory) / HISTORY_FILE).read_text(encoding="utf-8"))


def export_model(checkpoint_dir: str | Path, output: str | Path) -> Path:
    """Copy the checkpoint's model directory into `output` (which may already hold reports)."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    shutil.copytree(Path(checkpoint_dir) / MODEL_DIR, output, dirs_exist_ok=True)
    return output
