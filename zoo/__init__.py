"""hdr-zoo: single-image HDR reconstruction models behind one interface.

>>> import zoo
>>> zoo.list_models()
>>> model = zoo.create_model("hdrunet")
>>> zoo.load_weights(model, "hdrunet.pt")
>>> model = zoo.create_model_from_checkpoint("outputs/checkpoints/<run>/model.pt")  # architecture from the file
>>> hdr = model(ldr)  # (B,3,H,W) sRGB in [0,1] -> the model's native HDR (see zoo.get_spec(name).output_domain)
"""

import zoo.models  # noqa: E402,F401  (registers every model, once: timm-style)
from zoo.errors import ZooError
from zoo.factory import create_model, create_model_from_checkpoint
from zoo.inference import optimize_for_inference
from zoo.registry import ModelSpec, get_spec, list_models
from zoo.weights import load_weights

__all__ = [
    "ZooError",
    "ModelSpec",
    "create_model",
    "create_model_from_checkpoint",
    "get_spec",
    "list_models",
    "load_weights",
    "optimize_for_inference",
]
