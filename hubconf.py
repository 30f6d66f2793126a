"""torch.hub entry points: ``torch.hub.load("<repo or folder>", "hdrunet", source="local", pretrained=True)``.

One entry per registered model (``zoo list``). ``pretrained=True`` loads the shipped reference weights, offline, from
this repository (``zoo/pretrained/``; see each model's card); keyword arguments are architecture overrides, as for
``zoo.create_model``. Outputs are in the model's native domain: ``zoo.get_spec(name).output_domain``.
"""

dependencies = ["torch", "numpy"]

from zoo.factory import create_model as _create_model  # noqa: E402


def _entry(name: str, pretrained: bool, kwargs: dict):
    return _create_model(name, pretrained=pretrained, **kwargs)


def hdrunet(pretrained: bool = False, **kwargs):
    """HDRUNet (Chen et al., CVPRW 2021): LDR sRGB (B,3,H,W) in [0,1] → NTIRE gamma-encoded HDR."""
    return _entry("hdrunet", pretrained, kwargs)


def twostage(pretrained: bool = False, **kwargs):
    """Two-stage RDAB network (Sharif et al., 2021): LDR sRGB → NTIRE gamma-encoded HDR."""
    return _entry("twostage", pretrained, kwargs)


def singlehdr(pretrained: bool = False, **kwargs):
    """SingleHDR (Liu et al., CVPR 2020): LDR sRGB → linear radiance aligned to the input exposure."""
    return _entry("singlehdr", pretrained, kwargs)


def identity(**kwargs):
    """Baseline: the LDR input read as NTIRE gamma-encoded HDR (no parameters)."""
    return _entry("identity", False, kwargs)


def inverse_gamma(**kwargs):
    """Baseline: the LDR input linearised with the sRGB EOTF (no parameters)."""
    return _entry("inverse_gamma", False, kwargs)


def landis(**kwargs):
    """Baseline: Landis's expansion operator (no parameters)."""
    return _entry("landis", False, kwargs)


def tone_cheat(**kwargs):
    """Baseline: a global exposure and gamma fitted without evaluation references (Eilertsen et al. 2021)."""
    return _entry("tone_cheat", False, kwargs)


def akyuz(**kwargs):
    """Baseline: Akyüz et al. 2007 linear expansion operator (no parameters)."""
    return _entry("akyuz", False, kwargs)


def masia(**kwargs):
    """Baseline: Masia et al. 2009 key-dependent gamma expansion (no parameters)."""
    return _entry("masia", False, kwargs)
