"""Data layer: fastMRI files, masks, transforms, synthetic demo data and embedded assets."""
