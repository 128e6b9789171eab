"""MRI data: folder layouts, decoding, validation, splits, the fingerprint and cache, and the synthetic dataset."""
