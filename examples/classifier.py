"""A personalized classifier: one logistic model per sample, and who responds differently.

    python examples/classifier.py                    # N=1000, writes classifier_output/
    python examples/classifier.py --n-samples 200 --out /tmp/clf

Simulates 0/1 outcomes whose log-odds coefficients drift smoothly with two of
three covariates, fits ``PersonalizedClassifier`` with default settings and
compares it with one population logistic regression on new samples
(log-loss, accuracy). Then it asks which covariates drive the differences
between the samples' models and plots the models' embedding.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss

from bayes_prsn import PersonalizedClassifier, analysis, simulate


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--out", default="classifier_output")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = simulate.make_logistic(n_samples=args.n_samples, random_state=args.seed)
    # Hold out a quarter of the samples as new samples with known outcomes.
    train = np.arange(data.n_samples) < int(0.75 * data.n_samples)
    X, y, U = data.X[train], data.y[train], data.covariates[train]
    X_new, y_new, U_new = data.X[~train], data.y[~train], data.covariates[~train]

    start = time.perf_counter()
    est = PersonalizedClassifier(random_state=args.seed).fit(X, y, covariates=U)
    seconds = time.perf_counter() - start
    population = LogisticRegression(C=1e6, max_iter=1000).fit(X, y)

    p_personal = est.predict_proba(X_new, U_new)[:, 1]
    p_population = population.predict_proba(X_new)[:, 1]
    theta_mse = np.mean((est.coef_ - data.coef[train]) ** 2)
    population_theta_mse = np.mean((est.population_coef_ - data.coef[train]) ** 2)
    importance = analysis.covariate_importance(est)
    lines = [
        "bayes_prsn classifier example: personalized logistic regression",
        f"  training samples: {int(train.sum())}, new samples: {int((~train).sum())}, "
        f"fit {seconds:.1f} s ({est.n_steps_} SVI steps)",
        f"  held-out log-loss: personalized {log_loss(y_new, p_personal):.3f}, "
        f"population {log_loss(y_new, p_population):.3f}",
        f"  held-out accuracy: personalized {accuracy_score(y_new, p_personal > 0.5):.3f}, "
        f"population {accuracy_score(y_new, p_population > 0.5):.3f}",
        f"  theta-MSE on training samples: personalized {theta_mse:.3f}, "
        f"population {population_theta_mse:.3f}",
        f"  covariates that drive the differences (truth: {data.info['informative']}):",
        importance.drop(columns=["lower", "upper"]).round(3).to_string(),
    ]
    summary = "\n".join(lines)
    print(summary)
    (out / "summary.txt").write_text(summary + "\n")

    import matplotlib

    matplotlib.use("Agg")
    top = importance.index[0]
    fig, _ = analysis.plot_embedding(est, color_by=top)
    fig.savefig(out / "embedding.png", dpi=110)
    fig, _ = analysis.plot_covariate_importance(importance)
    fig.savefig(out / "covariate_importance.png", dpi=110)
    print(f"wrote summary.txt, embedding.png, covariate_importance.png to {out}/")


if __name__ == "__main__":
    main()
