"""What a training checkpoint holds, and how a run resumes from one.

A checkpoint directory is a complete model directory (`model/`: config, safetensors, tokenizer, so the best
checkpoint is exported by copying it) plus `train_state.pt` (optimizer, scheduler, loss scaler, the position
in the run, the epoch's running sums) and `history.json` (every finished epoch's metrics, so curves survive a
resume). A checkpoint taken within an epoch records how many of its steps were done; one taken at an epoch's
end records the epoch as finished.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

MODEL_DIR = "model"
STATE_FILE = "train_state.pt"
HISTORY_FILE = "history.json"


@dataclass
class Position:
    """Where a run stands: `steps_done` optimizer steps of `epoch` (all of them when `finished`)."""

    epoch: int = 0
    steps_done: int = 0
    finished: bool = True
    global_step: int = 0
    # running sums of the epoch in progress, so its train loss covers the steps before a resume too
    loss_sum: float = 0.0
    loss_weight: float = 0.0
    rows: int = 0
    step_losses: list[float] = field(default_factory=list)

    def completed_epochs(self) -> int:
        return self.epoch if self.finished else self.epoch - 1

    def next_epoch(self) -> int:
        """The epoch to run (or continue) next."""
        return self.completed_epochs() + 1

    def steps_to_skip(self, epoch: int) -> int:
        return 0 if self.finished or epoch != self.epoch else self.steps_done


def save(directory: str | Path, module, tokenizer, optimizer, scheduler, scaler, position: Position,
         history: list[dict], extra: dict, shape: dict) -> Path:
    """Write a checkpoint of the (unwrapped) model and the training state; `shape` is the run's DDP shape
    (world size, batch size), which a resume must match for its step counts to mean the same."""
    import torch

    from kobert_ops.model import save_classifier

    directory = Path(directory)
    save_classifier(module, tokenizer, directory / MODEL_DIR,
                    extra={**extra, "epoch": position.epoch, "trained": True})
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "scaler": scaler.state_dict() if scaler is not None else None,
             "position": asdict(position), "shape": shape}
    torch.save(state, directory / STATE_FILE)
    (directory / HISTORY_FILE).write_text(json.dumps(history, indent=2, ensure_ascii=False) + "\n")
    return directory


def load_weights(directory: str | Path, model) -> None:
    """Load the checkpoint's weights into `model` (same architecture and labels).

    `save_pretrained` leaves out tensors tied to another one (an MLM decoder shares the word embeddings) and
    non-persistent buffers; a name missing for any other reason is a real mismatch.
    """
    from safetensors.torch import load_file

    state = load_file(str(Path(directory) / MODEL_DIR / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    own = dict(model.named_parameters(remove_duplicate=False))
    loaded_storage = {tensor.data_ptr() for name, tensor in model.state_dict().items() if name in state}
    real_missing = [name for name in missing if not name.endswith("position_ids")
                    and not (name in own and own[name].data_ptr() in loaded_storage)]
    if real_missing or unexpected:
        raise RuntimeError(f"checkpoint does not match the model: missing {real_missing}, unexpected {unexpected}")


def load_state(directory: str | Path, optimizer, scheduler, scaler) -> tuple[Position, list[dict], dict]:
    """Restore optimizer, scheduler and scaler; returns (position, history, shape)."""
    import torch

    directory = Path(directory)
    state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    return Position(**state["position"]), read_history(directory), state.get("shape", {})


def read_history(directory: str | Path) -> list[dict]:
    return json.loads((Path(directory) / HISTORY_FILE).read_text(encoding="utf-8"))


def export_model(checkpoint_dir: str | Path, output: str | Path) -> Path:
    """Copy the checkpoint's model directory into `output` (which may already hold reports)."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    shutil.copytree(Path(checkpoint_dir) / MODEL_DIR, output, dirs_exist_ok=True)
    return output
