from functions.generation.app import lambda_handler  # noqa: F401  # replaced by the real worker entry
