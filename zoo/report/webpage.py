"""The HDR results page: ``zoo report`` writes ``<out>/index.html`` beside the Markdown tables.

One self-contained file (no network; images inline as data URIs, so a browser opening it from disk may read their
pixels): per results table, its NTIRE and SI-HDR tables, then for each evaluation image the input, every variant's
prediction and the reference side by side, on the highlight crop each run saved (``zoo.preview.save_hdr_preview``:
linear radiance as RGBE PNG). An exposure slider (−6 … +6 EV) and a tone-map switch re-render them in the browser:
``µ-law`` is the NTIRE tone map PSNR-µ compares (tanh µ-law, µ = 5000, normalised by the full reference image's 99th
percentile, ``mu_norm`` in each row), ``gamma`` is plain exposure, clipping and a 1/2.2 display gamma. So HDR results
can be judged by eye on an ordinary screen. Rows without HDR crops (made before they existed) are listed as such.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from zoo.preview import hdr_preview_path
from zoo.report.render import data_summary, sihdr_lines, table_lines
from zoo.report.tables import Table

PAGE_NAME = "index.html"


def _png_data_uri(rgbe: np.ndarray) -> str:
    import cv2

    ok, data = cv2.imencode(".png", cv2.cvtColor(rgbe, cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise OSError("PNG encoding of an HDR crop failed")
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode("ascii")


def _read_rgbe(path: Path) -> np.ndarray | None:
    import cv2

    bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgra is None or bgra.ndim != 3 or bgra.shape[2] != 4:
        return None
    return cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA)


def _html_table(header: list[str], lines: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line) + "</tr>" for line in lines)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _gallery(table: Table, runs_dir: Path) -> tuple[str, list[str]]:
    """The gallery of one table (HTML) and the variants without HDR crops."""
    strips: dict[str, np.ndarray] = {}
    missing = []
    images: list[dict] = []
    for v in table.variants:
        row = v.rows[0]
        rgbe = _read_rgbe(hdr_preview_path(runs_dir / f"{row['run_id']}.json"))
        if rgbe is None:
            missing.append(v.label)
            continue
        strips[v.label] = rgbe
        images = images or row.get("images", [])
    if not strips:
        return "", missing
    first = next(iter(strips.values()))
    n = len(images) or 1
    height, width = first.shape[0] // n, first.shape[1] // 3
    cells = [
        "<tr><th>image</th><th>input</th>"
        + "".join(f"<th>{html.escape(k)}</th>" for k in strips)
        + "<th>reference</th></tr>"
    ]
    for i in range(n):
        band = slice(i * height, (i + 1) * height)
        norm = float(images[i].get("mu_norm", 0.0)) if i < len(images) else 0.0
        name = html.escape(str(images[i]["image"])) if i < len(images) else str(i)

        def canvas(rgbe: np.ndarray, panel: int) -> str:
            crop = np.ascontiguousarray(rgbe[band, panel * width : (panel + 1) * width])
            return (
                f'<td><canvas class="hdr" width="{width}" height="{height}" data-norm="{norm:.6g}" '
                f'data-src="{_png_data_uri(crop)}"></canvas></td>'
            )

        cells.append(
            f"<tr><td>{name}</td>"
            + canvas(first, 0)
            + "".join(canvas(s, 1) for s in strips.values())
            + canvas(first, 2)
            + "</tr>"
        )
    return '<table class="gallery">' + "".join(cells) + "</table>", missing


SCRIPT = """
const slider = document.getElementById('ev'), label = document.getElementById('ev-value');
const tonemap = document.getElementById('tonemap');
const decoded = new Map();
function decode(canvas) {  // RGBE PNG -> Float32Array of linear RGB
  return new Promise(resolve => {
    if (decoded.has(canvas)) return resolve(decoded.get(canvas));
    const img = new Image();
    img.onload = () => {
      const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
      const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
      const px = ctx.getImageData(0, 0, img.width, img.height).data, out = new Float32Array(img.width * img.height * 3);
      for (let i = 0, j = 0; i < px.length; i += 4, j += 3) {
        const e = px[i + 3], f = e ? Math.pow(2, e - 136) : 0;
        out[j] = (px[i] + 0.5) * f; out[j + 1] = (px[i + 1] + 0.5) * f; out[j + 2] = (px[i + 2] + 0.5) * f;
      }
      decoded.set(canvas, out); resolve(out);
    };
    img.src = canvas.dataset.src;
  });
}
async function render() {
  const gain = Math.pow(2, parseFloat(slider.value)), mode = tonemap.value;
  label.textContent = (slider.value > 0 ? '+' : '') + slider.value + ' EV';
  for (const canvas of document.querySelectorAll('canvas.hdr')) {
    const lin = await decode(canvas), ctx = canvas.getContext('2d');
    const img = ctx.createImageData(canvas.width, canvas.height), norm = parseFloat(canvas.dataset.norm) || 1;
    for (let i = 0, j = 0; j < lin.length; i += 4, j += 3) {
      for (let k = 0; k < 3; k++) {
        const x = lin[j + k] * gain;
        const y = mode === 'mu' ? Math.log(1 + 5000 * Math.tanh(x / norm)) / Math.log(5001)
                                : Math.pow(Math.min(x, 1), 1 / 2.2);
        img.data[i + k] = Math.round(255 * Math.min(Math.max(y, 0), 1));
      }
      img.data[i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }
  document.body.dataset.rendered = slider.value + ':' + mode;
}
const hash = new URLSearchParams(location.hash.slice(1));  // e.g. index.html#ev=2&tonemap=gamma
if (hash.has('ev')) slider.value = hash.get('ev');
if (hash.has('tonemap')) tonemap.value = hash.get('tonemap');
slider.addEventListener('input', render); tonemap.addEventListener('change', render);
render();
"""

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; background: #fafafa; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
table.gallery td { padding: 1px; } canvas.hdr { width: 128px; image-rendering: pixelated; display: block; }
#controls { position: sticky; top: 0; background: #fafafa; padding: 0.5em 0; border-bottom: 1px solid #ccc; }
"""


def render_page(tables: list[Table], runs_dir: Path, source: str) -> str:
    """The whole page for ``tables`` built from the rows (and HDR crops) in ``runs_dir``."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>hdr-zoo results: {html.escape(source)}</title>"
        f"<style>{STYLE}</style></head><body><h1>hdr-zoo results</h1>"
        f"<p>Generated by <code>zoo report</code> from <code>{html.escape(source)}</code> (do not edit). Metrics "
        "are means over seeds × evaluation images with bootstrap 95 % CIs; see tables.md for every note.</p>"
        "<div id='controls'><label>exposure <input id='ev' type='range' min='-6' max='6' step='0.5' value='0'>"
        "</label> <span id='ev-value'>0 EV</span> &nbsp; <label>tone map <select id='tonemap'>"
        "<option value='mu'>µ-law (as PSNR-µ sees it)</option><option value='gamma'>exposure + gamma 2.2"
        "</option></select></label></div>"
    ]
    for table in tables:
        gallery, missing = _gallery(table, runs_dir)
        parts += [
            f"<h2>{html.escape(table.key)}</h2><p>{html.escape(data_summary(table))}.</p>",
            "<h3>NTIRE 2021 protocol</h3>",
            _html_table(*table_lines(table)),
            "<h3>SI-HDR protocol</h3>",
            _html_table(*sihdr_lines(table)),
        ]
        if gallery:
            parts += ["<h3>Every evaluation image (highlight crops)</h3>", gallery]
        if missing:
            parts.append(
                f"<p>No HDR crops saved for: {html.escape(', '.join(missing))} (rows made before they "
                "existed; rerun to add them).</p>"
            )
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"
