"""The E2E-HIM network (Swin-Tiny) and the import of its official checkpoint."""
