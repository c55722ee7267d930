"""The incident sandbox: AWS, PostgreSQL and Kubernetes on 127.0.0.1, seeded with realistic incidents.

It exists so that runbooks can be demonstrated, tested in CI and practised (game days) without a
cloud account, *unchanged*: a runbook reaches the sandbox through the same SDKs, endpoint variables
and kubeconfig it uses in production. Runbook code paths never import this package.
"""
