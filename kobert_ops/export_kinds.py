"""The kinds of model folder `kobert export` writes, by runtime: the graph file that makes a folder an export of
each, the int8 exports a PyTorch folder may hold of itself, and the runtimes' names in messages.

A table of names only, importing nothing: the path chooser (`kobert_ops.cpu_path`, read before anything heavy is
imported) and both predictors read it, and neither needs the other for it.
"""

# the graph file that makes a folder an export of each runtime
EXPORT_GRAPHS = {"onnx": "model.onnx", "openvino": "model.xml"}
# a model folder's own int8 exports, which `--runtime auto` may choose, by runtime
INT8_EXPORTS = {"openvino": "openvino-int8", "onnx": "onnx-int8"}
RUNTIME_NAMES = {"onnx": "ONNX", "openvino": "OpenVINO"}
