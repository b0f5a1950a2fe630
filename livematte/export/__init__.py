"""ONNX export of E2E-HIM and TensorRT engine builds (`livematte export onnx|tensorrt`)."""
