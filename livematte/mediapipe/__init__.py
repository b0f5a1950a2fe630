"""Google's MediaPipe person models (pose detector, pose landmarks with a per-person mask) run with
LiteRT: the model files, their fetching, and the people they find in a picture."""
