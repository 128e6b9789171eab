"""Data fixtures: tiny synthetic MRI datasets."""
