"""Data layer: the fastMRI file format, datasets, masks, transforms and embedded assets."""
