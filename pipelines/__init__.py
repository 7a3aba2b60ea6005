"""Beam pipelines: the batch catalogue sweep and the streaming upload path.

Both share one middle transform (`pipelines.transforms.ScoreUploads`:
validate → decode → featurize → score → decide) and differ only in source,
sink and windowing.
"""
