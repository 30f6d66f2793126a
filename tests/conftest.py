import os
from pathlib import Path

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")  # before any cv2 import

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DATA = Path(os.environ.get("ZOO_REFERENCE_DATA", REPO.parent / "shared" / "reference_data"))

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def reference_data() -> Path:
    """``../shared/reference_data`` (or $ZOO_REFERENCE_DATA); tests that need it skip when it is absent."""
    if not REFERENCE_DATA.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE_DATA} (set ZOO_REFERENCE_DATA to its folder)")
    return REFERENCE_DATA


@pytest.fixture(scope="session")
def fixtures_dir(reference_data: Path) -> Path:
    return reference_data / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def isolated_probe_cache(tmp_path_factory):
    """What the tests' tiling probes measure goes to a fresh folder, not the user's cache (subprocesses inherit it)."""
    os.environ["ZOO_CACHE_DIR"] = str(tmp_path_factory.mktemp("zoo-cache"))
