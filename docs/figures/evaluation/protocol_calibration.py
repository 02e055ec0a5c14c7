"""Protocol calibration: scores of samples drawn from the target itself (a perfect generator).

python docs/figures/evaluation/protocol_calibration.py
"""

import numpy as np

from tfgames.lab import protocols as pr

for name in ("pacgan-ring8", "pacgan-grid25", "tfgames-grid16"):
    p = pr.get_protocol(name)
    rows = [p.evaluate(p.sample(p.n_samples, seed=s)) for s in range(10)]
    modes = [r["modes"] for r in rows]
    hq = [100 * r["high_quality_share"] for r in rows]
    kl = [r["reverse_kl"] for r in rows]
    print(f"| {name} | target samples, seeds 0-9 | {np.mean(modes):.2f} +- "
          f"{np.std(modes, ddof=1):.2f} | {np.mean(hq):.2f} +- {np.std(hq, ddof=1):.2f} | "
          f"{np.mean(kl):.4f} +- {np.std(kl, ddof=1):.4f} |")
