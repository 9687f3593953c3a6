"""Pruning during training: settings, masks, schedule, trainer, compaction and the run."""
