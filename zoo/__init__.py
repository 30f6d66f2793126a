"""hdr-zoo: single-image HDR reconstruction models behind one interface.

    >>> import zoo
    >>> zoo.list_models()
    >>> model = zoo.create_model("hdrunet")
    >>> zoo.load_weights(model, "hdrunet.pt")
"""

from zoo.errors import ZooError
from zoo.registry import ModelSpec, create_model, get_spec, list_models

__all__ = ["ZooError", "ModelSpec", "create_model", "get_spec", "list_models"]
