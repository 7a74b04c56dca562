"""Tokyo mortality: deaths per municipality as a Poisson rate with expected deaths as exposure.

The classic count data set of geographically weighted Poisson regression
(262 municipalities; ``examples/data/README.md`` says where it comes from).
Each municipality gets its own model of how four social indicators relate
to its death rate, tied to its neighbours' through the coordinates.

    python examples/tokyo_mortality.py [--family negative_binomial]
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_prsn import PersonalizedRegression

DATA = Path(__file__).resolve().parent / "data" / "tokyo_mortality.csv"


def poisson_deviance(y, mu):
    ratio = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
    return 2.0 * np.sum(ratio - (y - mu))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="poisson", choices=["poisson", "negative_binomial"])
    args = parser.parse_args()
    frame = pd.read_csv(DATA)
    predictors = ["OCC_TEC", "OWNH", "POP65", "UNEMP"]
    coordinates = ["X_CENTROID", "Y_CENTROID"]
    y, expected = frame["db2564"], frame["eb2564"]
    model = PersonalizedRegression(family=args.family, random_state=0)
    model.fit(frame[predictors], y, frame[coordinates], exposure=expected)
    mu = model.predict(frame[predictors], frame[coordinates], exposure=expected)
    null = poisson_deviance(y.to_numpy(), expected * y.sum() / expected.sum())
    explained = 1 - poisson_deviance(y.to_numpy(), mu) / null
    print(f"family {args.family}: deviance explained {explained:.3f} (GWR4's GWR: 0.676)")
    print(model.summary())


if __name__ == "__main__":
    main()
