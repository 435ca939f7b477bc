"""Extraction on Ray (placeholder until h18's `extract_dataset` lands): the cluster-wide limiter."""
