"""The WebRTC demo: a browser sends its camera and gets the processed video back on the same connection."""
