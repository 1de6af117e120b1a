"""`kobert pretrain`: domain-adaptive masked-language-model pretraining on the shared Ray Train core
(`pipelines.core`: DDP, checkpoints, resume, fault recovery), with its own objective (`objective.MaskedLM`)."""
