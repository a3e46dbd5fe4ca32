"""Data sources: one loader per module, each returning `DatasetArrays`.

Kept light on purpose: loaders that need torch or torchvision import them lazily.
"""
