"""Training E2E-HIM on your own data: datasets, augmentation, matching, losses, the training loop."""
