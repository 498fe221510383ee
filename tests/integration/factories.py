"""Model factories named by `[model] factory = "tests.integration.factories:..."` in the tests."""

from river import linear_model, naive_bayes, preprocessing


def gaussian_classifier():
    return preprocessing.StandardScaler() | naive_bayes.GaussianNB()


def pa_regressor():
    return preprocessing.StandardScaler() | linear_model.LinearRegression(l2=0.001)
