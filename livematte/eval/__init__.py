"""Evaluation of person mattes against ground truth: instance, image and temporal metrics."""
