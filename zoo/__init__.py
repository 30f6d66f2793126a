"""hdr-zoo: single-image HDR reconstruction models behind one interface.

    >>> import zoo
    >>> zoo.list_models()
    >>> model = zoo.create_model("hdrunet")
    >>> zoo.load_weights(model, "hdrunet.pt")
    >>> hdr = model(ldr)  # (B,3,H,W) sRGB in [0,1] -> the model's native HDR (see zoo.get_spec(name).output_domain)
"""

from zoo.errors import ZooError
from zoo.registry import ModelSpec, create_model, get_spec, list_models
from zoo.inference import optimize_for_inference
from zoo.weights import load_weights

__all__ = ["ZooError", "ModelSpec", "create_model", "get_spec", "list_models", "load_weights", "optimize_for_inference"]
