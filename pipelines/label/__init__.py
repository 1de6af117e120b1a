"""Bulk labeling: read → validate → tokenize → predict → write → commit, one stage per module.

`command.py` is the `kobert label` entry point, `pipeline.py` composes the stages, `output.py` and
`manifest.py` make the output exactly-once and incremental. The output contract is in docs/labeling.md.
"""
