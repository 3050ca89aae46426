"""InfoMEC against its authors' function (kylehkhsu/latent_quantization, `disentangle/metrics/infomec.py`), on the
known-answer codes of tests/test_factor_scores.py and on saved disentanglement.npz files: the differences, printed
as JSON. Their file is read from where you keep a copy, and two things today's libraries refuse are mended before it
runs: the keyword scikit-learn 1.8 removed (`multi_class='multinomial'`, lbfgs's only multiclass behaviour since) is
dropped, and the one-element array `mutual_info_classif` returns is indexed before NumPy 2 stores it; their
`mutual_info_classif` calls draw unseeded tie-breaking noise, so two runs of theirs differ too (printed beside).

    PYTHONPATH=. python benchmarks/infomec_reference.py /path/to/latent_quantization/disentangle/metrics/infomec.py \\
        multirun/results-models/*/disentanglement.npz
"""

from __future__ import annotations

import argparse
import json
import types
import warnings
from pathlib import Path

import numpy as np

from betavae.metrics.infomec import infomec
from tests.test_factor_scores import GRID, KNOWN_CODES


def reference(path: Path) -> types.ModuleType:
    """The authors' module, with the removed keyword dropped."""
    module = types.ModuleType("infomec_reference")
    text = path.read_text().replace("multi_class='multinomial',", "")
    text = text.replace("n_neighbors=10)", "n_neighbors=10)[0]")  # NumPy 2 no longer puts a 1-array in a cell
    exec(compile(text, str(path), "exec"), module.__dict__)
    return module


def compare(theirs: types.ModuleType, codes: np.ndarray, factors: np.ndarray) -> dict[str, float | str | None]:
    """Ours, theirs twice, and the largest difference of ours from either run of theirs, per score (or the error
    theirs raises)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = infomec(codes, factors)
        try:
            runs = [theirs.compute_infomec(factors, codes, discrete_latents=False) for _ in range(2)]
        except ValueError as err:
            return {**ours, "theirs": f"raises ValueError: {err}"}
    out: dict[str, float | str | None] = {}
    for name, key in (("infomec_m", "infom"), ("infomec_c", "infoc"), ("infomec_e", "infoe")):
        values = [float(r[key]) for r in runs]
        out[name] = ours.get(name)
        out[f"{name} theirs"] = values[0] if np.isfinite(values[0]) else None
        out[f"{name} theirs again"] = values[1] if np.isfinite(values[1]) else None
        if name in ours and all(np.isfinite(values)):
            out[f"{name} |ours − theirs|"] = max(abs(ours[name] - v) for v in values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args()
    theirs = reference(args.reference)
    found = {kind: compare(theirs, make(GRID), GRID) for kind, make in KNOWN_CODES.items()}
    for path in args.files:
        saved = np.load(path)
        found[str(path.parent.name)] = compare(theirs, saved["codes_train"], saved["factors_train"])
    print(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
