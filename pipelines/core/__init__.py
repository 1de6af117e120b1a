"""The Ray Train core that fine-tuning and pretraining share.

`driver` runs on the driver (connect, resolve paths, guard the run directory, fit, wrap failures, pick the
best checkpoint); `worker` runs on every DDP rank (setup, steps, mid-epoch checkpoints, evaluation, reports).
What differs between objectives (the model, its batches, its evaluation) is an `objective.Objective`.
"""
