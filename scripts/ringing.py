"""Where the PSNR-µ error on the real scenes comes from: the files' compression-ringing pixels.

    python scripts/ringing.py [MODEL ...]     # default: hdrunet twostage singlehdr (shipped weights), 2 threads

For each held-out real scene, under both negative-value policies (``clamp``: the ringing pixels become 0; ``fill``:
they are filled from their neighbours before the camera is simulated, the default of ``data=real``), prints the
number of pixels with a negative channel in the file, how many of the pixels whose µ-law reference value is below 0.2
(the darkest band) are ringing pixels, and each model's and identity's PSNR-µ with the share of its squared µ-law
error that falls on the ringing pixels. The µ-law is the NTIRE one of ``zoo.metrics`` (99th percentile of the
reference). Writes nothing; docs/evaluation.md quotes its output.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import zoo  # noqa: E402
from zoo import io  # noqa: E402
from zoo.data import DataConfig, build_dataset  # noqa: E402
from zoo.evaluate import predict_ntire  # noqa: E402
from zoo.metrics import ntire_mu_tonemap  # noqa: E402


def main(models: list[str]) -> None:
    torch.set_num_threads(2)
    nets = {name: zoo.create_model(name, pretrained=name != "identity").eval() for name in ["identity", *models]}
    for policy in ("clamp", "fill"):
        data = build_dataset(DataConfig(name="real", eval_height=None, eval_width=None, negative_values=policy), "eval")
        print(f"\nnegative_values={policy}: PSNR-µ (dB) and [share of the squared µ-law error on ringing pixels]")
        print(f"{'scene':10s} {'ringing px':>10s} {'dark px ringing':>15s}  " + "  ".join(f"{n:>17s}" for n in nets))
        for index in range(len(data)):
            record = data.describe(index)
            ringing = (io.read_hdr_counted(record["file"], "fill")[0] != io.read_exr(record["file"])).any(-1)
            sample = data[index]
            reference = sample["target"].permute(1, 2, 0).numpy()
            ref_mu = ntire_mu_tonemap(reference, reference)
            dark = ref_mu.mean(-1) < 0.2
            cells = []
            for name, net in nets.items():
                with torch.no_grad():
                    result = predict_ntire(net, zoo.get_spec(name), sample["ldr"][None])[0].permute(1, 2, 0).numpy()
                error = ((ntire_mu_tonemap(result, reference) - ref_mu) ** 2).mean(-1)
                cells.append(f"{10 * np.log10(1 / error.mean()):6.2f} [{error[ringing].sum() / error.sum():5.1%}]")
            counts = f"{int(ringing.sum()):10d} {int((dark & ringing).sum()):7d} of {int(dark.sum()):5d}"
            print(f"{record['id']:10s} {counts}  " + "  ".join(f"{c:>17s}" for c in cells))


if __name__ == "__main__":
    main(sys.argv[1:] or ["hdrunet", "twostage", "singlehdr"])
