"""Ingest: checkpoint sources, toy training run, tasks and the batched ablation sweep."""
