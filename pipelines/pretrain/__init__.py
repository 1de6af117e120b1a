"""`kobert pretrain`: domain-adaptive masked-language-model pretraining with the training machinery of
`pipelines.train` (Ray Train DDP, checkpoints, resume, fault recovery)."""
