"""Batch machinery behind `extract.batch`: documents in, one Outcome per document out, bounded memory."""
